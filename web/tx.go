package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"github.com/statehub/statehub/hub"
)

// MaxTxBytes bounds the body of POST /.tx.
const MaxTxBytes = 8 << 20

// TxRequest is the body of POST /.tx (see hub.Tx for the semantics).
type TxRequest struct {
	Checks []TxCheck `json:"checks"`
	Ops    []TxOp    `json:"ops"`
}

// TxCheck requires key to be at revision (-1: absent).
type TxCheck struct {
	Key      string `json:"key"`
	Revision *int64 `json:"revision"`
}

// TxOp is one operation: {"op":"set","key","value"}, {"op":"incr","key","by"} (by defaults to
// 1) or {"op":"delete","key"}.
type TxOp struct {
	Op    string          `json:"op"`
	Key   string          `json:"key"`
	Value json.RawMessage `json:"value"`
	By    *int64          `json:"by"`
}

// TxAnswer is the answer to a transaction: its seq and one result per operation, in order.
type TxAnswer struct {
	Seq     uint64       `json:"seq"`
	Results []TxOpAnswer `json:"results"`
}

// TxOpAnswer is the result of one operation of a transaction, in the order of the request's ops.
type TxOpAnswer struct {
	Key      string          `json:"key"`
	Revision int64           `json:"revision"`        // after the change; for a delete the deleted revision + 1; -1: deleted nothing
	Value    json.RawMessage `json:"value,omitempty"` // an incr's new value
}

func txOpAnswers(results []hub.TxOpResult) []TxOpAnswer {
	out := make([]TxOpAnswer, len(results))
	for i, r := range results {
		out[i] = TxOpAnswer(r)
	}
	return out
}

// decodeTx parses a transaction body; opTx validates it.
func decodeTx(body []byte) (TxRequest, error) {
	var req TxRequest
	// Before decoding: encoding/json would turn invalid bytes in keys into U+FFFD.
	if err := hub.CheckUTF8("the body", body); err != nil {
		return req, err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return req, badRequest("invalid_tx", "the body must be {\"checks\": [...], \"ops\": [...]}: "+err.Error())
	}
	if dec.More() {
		return req, badRequest("invalid_tx", "the body holds more than one JSON value")
	}
	return req, nil
}

// compile validates a transaction request, over HTTP or the WebSocket alike, into the hub's terms:
// every check names a revision, incr's by defaults to 1, set values are compact JSON.
func (req TxRequest) compile(limits hub.Limits) ([]hub.TxCheck, []hub.TxOp, error) {
	if len(req.Checks) > hub.MaxTxOps || len(req.Ops) > hub.MaxTxOps {
		return nil, nil, badRequest("invalid_tx", fmt.Sprintf("a transaction has at most %d checks and %d operations", hub.MaxTxOps, hub.MaxTxOps))
	}
	checks := make([]hub.TxCheck, len(req.Checks))
	for i, c := range req.Checks {
		if c.Revision == nil {
			return nil, nil, badRequest("invalid_tx", fmt.Sprintf("check %d (%s) has no revision (-1 means absent)", i, c.Key))
		}
		checks[i] = hub.TxCheck{Key: c.Key, Revision: *c.Revision}
	}
	ops := make([]hub.TxOp, len(req.Ops))
	for i, o := range req.Ops {
		op := hub.TxOp{Op: o.Op, Key: o.Key}
		switch o.Op {
		case hub.TxSet:
			if len(o.Value) == 0 {
				return nil, nil, badRequest("invalid_tx", fmt.Sprintf("operation %d sets %s without a value", i, o.Key))
			}
			v, err := limits.CompactJSON(o.Value)
			if err != nil {
				return nil, nil, fmt.Errorf("operation %d: %w", i, err)
			}
			op.Value = v
		case hub.TxIncr:
			op.By = 1
			if o.By != nil {
				op.By = *o.By
			}
		case hub.TxDelete:
		default:
			return nil, nil, badRequest("invalid_tx", fmt.Sprintf("operation %d: op must be set, incr or delete, not %q", i, o.Op))
		}
		if (o.Op != hub.TxSet && o.Value != nil) || (o.Op != hub.TxIncr && o.By != nil) {
			return nil, nil, badRequest("invalid_tx", fmt.Sprintf("operation %d: %s takes no value or by", i, o.Op))
		}
		ops[i] = op
	}
	return checks, ops, nil
}

// tx serves POST /.tx.
func (s *Server) tx(c echo.Context) error {
	body, err := io.ReadAll(http.MaxBytesReader(nil, c.Request().Body, MaxTxBytes))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return &apiError{http.StatusRequestEntityTooLarge, "too_large", "a transaction body is at most " + strconv.Itoa(MaxTxBytes) + " bytes"}
	}
	if err != nil {
		return badRequest("bad_body", "reading the body: "+err.Error())
	}
	req, err := decodeTx(body)
	if err != nil {
		return err
	}
	if c.Request().Header.Get("If-Fence") != "" {
		return badRequest("invalid_fence", "a transaction takes no If-Fence: check the lock key's revision in its checks instead")
	}
	p, err := s.principalOf(c)
	if err != nil {
		return err
	}
	opt, err := writeOptions(c, c.QueryParams())
	if err != nil {
		return err
	}
	res, err := s.opTx(p, req, opt)
	if err != nil {
		return err
	}
	c.Response().Header().Set(hdrSeq, strconv.FormatUint(res.Seq, 10))
	if res.Replayed {
		c.Response().Header().Set(hdrReplayed, "true")
	}
	return c.JSON(http.StatusOK, TxAnswer{Seq: res.Seq, Results: txOpAnswers(res.Ops)})
}
