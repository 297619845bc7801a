// Package scrape reads a Statehub server's /.metrics for the load tools in bench/: the unlabelled
// samples, by name. A tool reads them before and after a run and prints the difference.
package scrape

import (
	"bufio"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// Metrics returns the unlabelled samples of base's /.metrics, read with token (an admin token, or
// one with the metrics grant).
func Metrics(base, token string) (map[string]float64, error) {
	req, err := http.NewRequest(http.MethodGet, base+"/.metrics", nil)
	if err != nil {
		return nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /.metrics: %s (give the admin token with -token)", res.Status)
	}
	m := map[string]float64{}
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok || strings.HasPrefix(name, "#") || strings.Contains(name, "{") {
			continue
		}
		if v, err := strconv.ParseFloat(value, 64); err == nil {
			m[name] = v
		}
	}
	return m, sc.Err()
}
