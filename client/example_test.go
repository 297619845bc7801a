package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"net/http/httptest"
	"time"

	"github.com/statehub/statehub/auth"
	"github.com/statehub/statehub/client"
	"github.com/statehub/statehub/hub"
	"github.com/statehub/statehub/web"
)

// exampleToken is the admin token of the examples' server.
const exampleToken = "example-admin-token-0123456789"

// startServer starts a fresh, memory-only Statehub server in this process for an example and
// returns its URL and a function that stops it. In real use the server runs on its own and its
// URL and token come from your configuration (the CLI reads STATEHUB_URL and STATEHUB_TOKEN).
func startServer() (url string, stop func()) {
	h := hub.New(hub.Config{Logger: quiet})
	a, err := auth.New(auth.Config{AdminToken: exampleToken})
	if err != nil {
		log.Fatal(err)
	}
	srv := httptest.NewServer(web.New(h, web.Config{Logger: quiet, Auth: a}).Handler())
	return srv.URL, func() { h.Close(); srv.Close() }
}

func Example() {
	url, stop := startServer()
	defer stop()
	ctx := context.Background()

	c, err := client.New(url, client.WithToken(client.StaticToken(exampleToken)))
	if err != nil {
		log.Fatal(err)
	}
	if _, err := c.Set(ctx, "/app/config", map[string]any{"colour": "blue"}); err != nil {
		log.Fatal(err)
	}
	e, err := c.Get(ctx, "/app/config")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s revision %d\n", e.Value, e.Revision)

	build, err := c.Incr(ctx, "/ci/app/main/build", 1)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("build", build)
	// Output:
	// {"colour":"blue"} revision 0
	// build 1
}

func ExampleClient_Update() {
	url, stop := startServer()
	defer stop()
	ctx := context.Background()
	c, _ := client.New(url, client.WithToken(client.StaticToken(exampleToken)))

	type board struct {
		Title string `json:"title"`
		Edits int    `json:"edits"`
	}
	// fn may run more than once: when another writer changes the key in between, Update reads it
	// again and retries.
	rename := func(title string) func(json.RawMessage) (any, error) {
		return func(cur json.RawMessage) (any, error) {
			var b board
			if cur != nil {
				if err := json.Unmarshal(cur, &b); err != nil {
					return nil, err
				}
			}
			b.Title, b.Edits = title, b.Edits+1
			return b, nil
		}
	}
	c.Update(ctx, "/board/1", rename("draft"))
	r, err := c.Update(ctx, "/board/1", rename("final"))
	if err != nil {
		log.Fatal(err)
	}
	e, _ := c.Get(ctx, "/board/1")
	fmt.Println(string(e.Value), "revision", r.Revision)
	// Output: {"title":"final","edits":2} revision 1
}

func ExampleClient_List() {
	url, stop := startServer()
	defer stop()
	ctx := context.Background()
	c, _ := client.New(url, client.WithToken(client.StaticToken(exampleToken)))
	for _, name := range []string{"ann", "bob", "cy"} {
		c.Set(ctx, "/room/1/"+name, map[string]bool{"online": true})
	}

	// Pages of 2: the loop never sees where one ends.
	for e, err := range c.List(ctx, "/room/1/", client.ListOptions{Limit: 2}) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(e.Key, string(e.Value))
	}
	// Output:
	// /room/1/ann {"online":true}
	// /room/1/bob {"online":true}
	// /room/1/cy {"online":true}
}

func ExampleClient_Tx() {
	url, stop := startServer()
	defer stop()
	ctx := context.Background()
	c, _ := client.New(url, client.WithToken(client.StaticToken(exampleToken)))
	c.Set(ctx, "/acct/ann", 100)

	// Move 30 from ann to bob, if ann's balance is still the one read.
	ann, _ := c.Get(ctx, "/acct/ann")
	res, err := c.Tx(ctx, client.Tx{
		Checks: []client.Check{{Key: "/acct/ann", Revision: ann.Revision}},
		Ops:    []client.Op{client.IncrOp("/acct/ann", -30), client.IncrOp("/acct/bob", 30)},
	})
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range res.Results {
		fmt.Println(r.Key, string(r.Value))
	}

	// The same check again fails: ann's revision moved on.
	_, err = c.Tx(ctx, client.Tx{
		Checks: []client.Check{{Key: "/acct/ann", Revision: ann.Revision}},
		Ops:    []client.Op{client.IncrOp("/acct/ann", -30), client.IncrOp("/acct/bob", 30)},
	})
	var e *client.Error
	if errors.Is(err, client.ErrConflict) && errors.As(err, &e) {
		fmt.Println("conflict on", e.Key, "now at revision", e.Revision)
	}
	// Output:
	// /acct/ann 70
	// /acct/bob 30
	// conflict on /acct/ann now at revision 1
}

func ExampleClient_WithLock() {
	url, stop := startServer()
	defer stop()
	ctx := context.Background()
	c, _ := client.New(url, client.WithToken(client.StaticToken(exampleToken)))

	// Wait up to 5 minutes for the lock; it lasts 10 minutes unless renewed, and WithLock renews it
	// while the function runs. ctx ends if the lock is lost.
	opts := client.LockOptions{TTL: 10 * time.Minute, Wait: 5 * time.Minute, Owner: "deployer@ci"}
	err := c.WithLock(ctx, "/deploy/prod", opts, func(ctx context.Context, fence uint64) error {
		// Pass the fence on, so the target can refuse a deploy older than one it has seen.
		fmt.Println("deploying with fence", fence)
		held, _ := c.Get(ctx, "/deploy/prod")
		var v struct{ Owner string }
		json.Unmarshal(held.Value, &v)
		fmt.Println("held by", v.Owner)
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
	_, err = c.Get(ctx, "/deploy/prod")
	fmt.Println("afterwards:", errors.Is(err, client.ErrNotFound))
	// Output:
	// deploying with fence 1
	// held by deployer@ci
	// afterwards: true
}

func ExampleClient_Watch() {
	url, stop := startServer()
	defer stop()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c, _ := client.New(url, client.WithToken(client.StaticToken(exampleToken)))
	c.Set(ctx, "/room/1/ann", "here")

	// The current state, then every change, exactly once, across reconnections.
	for ev, err := range c.Watch(ctx, "/room/1/", client.WatchOptions{Snapshot: true}) {
		if err != nil {
			log.Fatal(err)
		}
		b, _ := json.Marshal(ev)
		fmt.Println(string(b))
		switch {
		case ev.Type == client.EventReady:
			c.Set(ctx, "/room/1/bob", "here") // now that the watch is live
		case ev.Key == "/room/1/bob":
			return
		}
	}
	// Output:
	// {"type":"set","key":"/room/1/ann","value":"here","revision":0,"seq":1,"snapshot":true,"id":"/room/1/ann:0:1:s"}
	// {"type":"ready","seq":1,"id":"1"}
	// {"type":"set","key":"/room/1/bob","value":"here","revision":0,"seq":2,"id":"/room/1/bob:0:2"}
}

func ExampleClient_OpenSession() {
	url, stop := startServer()
	defer stop()
	ctx := context.Background()
	c, _ := client.New(url, client.WithToken(client.StaticToken(exampleToken)))

	// Presence: the key lives while the session's connection does (plus the server's grace
	// period, so a reconnection does not flicker).
	s, err := c.OpenSession(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Set(ctx, "/room/1/ann", map[string]bool{"online": true}); err != nil {
		log.Fatal(err)
	}
	e, _ := c.Get(ctx, "/room/1/ann")
	fmt.Println(string(e.Value))
	// Output: {"online":true}
}

func ExampleError() {
	url, stop := startServer()
	defer stop()
	ctx := context.Background()
	c, _ := client.New(url, client.WithToken(client.StaticToken(exampleToken)))
	c.Set(ctx, "/k", "v1")
	c.Set(ctx, "/k", "v2")

	_, err := c.Set(ctx, "/k", "v3", client.IfRevision(0)) // it is at 1
	var e *client.Error
	if errors.As(err, &e) {
		fmt.Println(errors.Is(err, client.ErrConflict), e.Status, e.Code, e.Revision)
	}
	_, err = c.Get(ctx, "/missing")
	fmt.Println(errors.Is(err, client.ErrNotFound))
	// Output:
	// true 409 revision_conflict 1
	// true
}
