package client

import (
	"context"
	"encoding/json"
	"net/http"
)

// Tx is a transaction: every check must hold, then every op is applied, atomically in one commit
// (one seq), or none is.
type Tx struct {
	Checks []Check
	Ops    []Op
}

// Check requires a key's current revision to be Revision (-1: the key is absent).
type Check struct {
	Key      string `json:"key"`
	Revision int64  `json:"revision"`
}

// Op is one write of a transaction; make it with SetOp, IncrOp or DeleteOp. A key may be in at
// most one op.
type Op struct {
	kind  string
	key   string
	value any
	by    int64
}

// SetOp sets key to value (marshaled with encoding/json).
func SetOp(key string, value any) Op { return Op{kind: "set", key: key, value: value} }

// IncrOp adds by to the integer at key.
func IncrOp(key string, by int64) Op { return Op{kind: "incr", key: key, by: by} }

// DeleteOp deletes key; an absent key is no error (its result's Revision is -1).
func DeleteOp(key string) Op { return Op{kind: "delete", key: key} }

// MarshalJSON writes the op as POST /.tx takes it.
func (o Op) MarshalJSON() ([]byte, error) {
	switch o.kind {
	case "set":
		v := o.value
		if v == nil {
			v = json.RawMessage("null")
		}
		return json.Marshal(struct {
			Op    string `json:"op"`
			Key   string `json:"key"`
			Value any    `json:"value"`
		}{o.kind, o.key, v})
	case "incr":
		return json.Marshal(struct {
			Op  string `json:"op"`
			Key string `json:"key"`
			By  int64  `json:"by"`
		}{o.kind, o.key, o.by})
	}
	return json.Marshal(struct {
		Op  string `json:"op"`
		Key string `json:"key"`
	}{o.kind, o.key})
}

// TxResult is a committed transaction.
type TxResult struct {
	Seq     uint64     `json:"seq"`     // the commit's seq, shared by every change
	Results []OpResult `json:"results"` // one per op, in order
}

// OpResult is the outcome of one op.
type OpResult struct {
	Key      string `json:"key"`
	Revision int64  `json:"revision"` // the new revision; a delete's: the deleted one + 1, or -1 when the key was absent
	// Value is an increment's new value; nil for the other ops.
	Value json.RawMessage `json:"value,omitempty"`
}

// Tx applies tx. A failed check is ErrConflict, whose *Error names the key (Key) and its current
// revision (Revision); any failing op fails the whole transaction with that op's error.
// Options: IdempotencyKey.
func (c *Client) Tx(ctx context.Context, tx Tx, opts ...WriteOption) (TxResult, error) {
	o, err := writeOpts("Tx", opts, optIdem)
	if err != nil {
		return TxResult{}, err
	}
	body := struct {
		Checks []Check `json:"checks"`
		Ops    []Op    `json:"ops"`
	}{tx.Checks, tx.Ops}
	if body.Checks == nil {
		body.Checks = []Check{}
	}
	if body.Ops == nil {
		body.Ops = []Op{}
	}
	rd, err := jsonBody(body)
	if err != nil {
		return TxResult{}, err
	}
	r := request{method: http.MethodPost, path: "/.tx", body: rd, header: http.Header{"Content-Type": {"application/json"}}}
	o.apply(&r)
	var out TxResult
	_, err = c.doJSON(ctx, r, &out)
	return out, err
}
