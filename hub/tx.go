package hub

import (
	"encoding/json"
	"fmt"
	"time"
)

// Transactions: a list of checks and a list of operations, applied in one commit or not at all.
//
//   - Every check must hold (the key is at that revision; -1: the key is absent), else the
//     transaction fails with a *ConflictError naming the first failed check's key.
//   - The operations run in order against the state before the transaction; a key may appear in
//     at most one operation (a repeat is ErrInvalidTx: "set then incr" has no single obvious
//     meaning and the commit names each key once). Checks may name any key, also repeatedly.
//   - Any failing operation (an incr of a non-integer, an overflow, a write to a held lock) fails
//     the whole transaction and changes nothing.
//   - Deleting an absent key is a no-op (its result has revision -1); add a check to require it.
//   - A set clears the key's TTL, as Set does; an incr keeps it, as Incr does.
//   - All changes share one seq, and their events come in key order.

// MaxTxOps bounds the number of checks and of operations of one transaction.
const MaxTxOps = 1000

// The operations of a transaction.
const (
	TxSet    = "set"
	TxIncr   = "incr"
	TxDelete = "delete"
)

// TxCheck is a precondition: Key is at Revision, or absent when Revision is -1.
type TxCheck struct {
	Key      string
	Revision int64
}

// TxOp is one operation: set Key to Value (compact JSON, as Limits.CompactJSON returns), incr Key
// by By, or delete Key.
type TxOp struct {
	Op    string
	Key   string
	Value json.RawMessage
	By    int64
}

// TxOpResult is the outcome of one operation.
type TxOpResult struct {
	Key      string
	Revision int64           // after the change; for a delete the deleted revision + 1; -1: deleted nothing
	Value    json.RawMessage // an incr's new value; nil for the others
}

// TxResult is the answer to a transaction.
type TxResult struct {
	Seq      uint64       // the commit's seq (the current seq when nothing changed)
	Ops      []TxOpResult // in the order of the operations
	Replayed bool         // the answer of an earlier request with the same idempotency key
}

// Tx applies ops atomically if every check holds. See the comment at the top of this file.
func (h *Local) Tx(checks []TxCheck, ops []TxOp, opt WriteOptions) (TxResult, error) {
	in, err := checkTx(h.limits, checks, ops)
	if err != nil {
		return TxResult{}, err
	}
	res, err := h.write(opt, in, txStep(checks, ops))
	if err != nil {
		return TxResult{}, err
	}
	return txResult(res)
}

// checkTx validates a transaction and returns its intent.
func checkTx(limits Limits, checks []TxCheck, ops []TxOp) (intent, error) {
	if len(checks) > MaxTxOps || len(ops) > MaxTxOps {
		return intent{}, fmt.Errorf("%w: more than %d checks or operations", ErrInvalidTx, MaxTxOps)
	}
	for _, c := range checks {
		if err := limits.CheckKey(c.Key); err != nil {
			return intent{}, err
		}
		if c.Revision < -1 {
			return intent{}, fmt.Errorf("%w: check of %s: revision %d", ErrInvalidTx, c.Key, c.Revision)
		}
	}
	seen := make(map[string]bool, len(ops))
	for i, op := range ops {
		if err := limits.CheckKey(op.Key); err != nil {
			return intent{}, err
		}
		if seen[op.Key] {
			return intent{}, fmt.Errorf("%w: %s appears in more than one operation", ErrInvalidTx, op.Key)
		}
		seen[op.Key] = true
		switch op.Op {
		case TxSet:
			if len(op.Value) == 0 {
				return intent{}, fmt.Errorf("%w: operation %d sets %s without a value", ErrInvalidTx, i, op.Key)
			}
		case TxIncr, TxDelete:
		default:
			return intent{}, fmt.Errorf("%w: operation %d: unknown op %q", ErrInvalidTx, i, op.Op)
		}
	}
	req, _ := json.Marshal(struct {
		C []TxCheck
		O []TxOp
	}{checks, ops})
	return intent{op: "tx", body: req}, nil
}

// txStep is the read-check-change step of a transaction.
func txStep(checks []TxCheck, ops []TxOp) buildFunc {
	return func(_ time.Time, v view) (step, error) {
		for _, c := range checks {
			cur, ok := v.get(c.Key)
			rev := int64(-1)
			if ok {
				rev = cur.revision
			}
			if rev != c.Revision {
				return step{}, &ConflictError{Err: ErrRevisionConflict, Key: c.Key, Revision: rev, Seq: cur.seq}
			}
		}
		byKey := make(map[string]Change, len(ops))
		results := make([]TxOpResult, len(ops))
		for i, op := range ops {
			ch, r, err := txOp(v, op)
			if err != nil {
				return step{}, err
			}
			results[i] = r
			if ch.Key != "" {
				byKey[ch.Key] = ch
			}
		}
		enc, _ := json.Marshal(txRecords(results))
		return step{res: Result{Value: enc}, many: sortedChanges(byKey)}, nil
	}
}

// txResult decodes a transaction's answer from its Result.
func txResult(res Result) (TxResult, error) {
	var recs []txRecord
	if err := json.Unmarshal(res.Value, &recs); err != nil {
		return TxResult{}, fmt.Errorf("hub: transaction results: %w", err)
	}
	out := TxResult{Seq: res.Seq, Replayed: res.Replayed, Ops: make([]TxOpResult, len(recs))}
	for i, r := range recs {
		out.Ops[i] = TxOpResult(r)
	}
	return out, nil
}

// txRecord is how a transaction's results are kept in its Result, and so in an idempotency
// record in the log: this encoding is persisted.
type txRecord struct {
	Key      string          `json:"key"`
	Revision int64           `json:"revision"`
	Value    json.RawMessage `json:"value,omitempty"`
}

func txRecords(results []TxOpResult) []txRecord {
	out := make([]txRecord, len(results))
	for i, r := range results {
		out[i] = txRecord(r)
	}
	return out
}

// txOp computes one operation's change (Key empty: no change) against v.
func txOp(v view, op TxOp) (Change, TxOpResult, error) {
	cur, ok := v.get(op.Key)
	if err := checkNotLocked(&cur, ok); err != nil {
		return Change{}, TxOpResult{}, err
	}
	rev := int64(0)
	if ok {
		rev = cur.revision + 1
	}
	switch op.Op {
	case TxSet:
		return Change{Key: op.Key, Value: op.Value, Revision: rev}, TxOpResult{Key: op.Key, Revision: rev}, nil
	case TxIncr:
		value, err := incremented(op.Key, &cur, ok, op.By)
		if err != nil {
			return Change{}, TxOpResult{}, err
		}
		return Change{Key: op.Key, Value: value, Revision: rev, Expires: cur.expires()},
			TxOpResult{Key: op.Key, Revision: rev, Value: value}, nil
	default: // TxDelete
		if !ok {
			return Change{}, TxOpResult{Key: op.Key, Revision: -1}, nil
		}
		return Change{Key: op.Key, Revision: rev, Deleted: true}, TxOpResult{Key: op.Key, Revision: rev}, nil
	}
}
