package hub

import "sync"

// EventEncodings is how many encodings of one event the transports may share
// (Event.AppendEncoded): each transport owns a number below it.
const EventEncodings = 2

// encodings holds a delivered change's encodings, one per transport, each built by the first
// subscriber that needs it and shared by every subscription's copy of the event.
type encodings struct {
	once [EventEncodings]sync.Once
	b    [EventEncodings][]byte
}

// AppendEncoded appends the event's encoding number n (a transport's own, below EventEncodings)
// to b. enc appends the encoding of an event to b; it must depend on nothing but the event. A
// live change reaching several subscriptions is encoded once per n and the bytes are shared
// (enc runs once); any other event (a snapshot entry, a reset, a replay) is encoded on each call.
func (e *Event) AppendEncoded(b []byte, n int, enc func(b []byte, e *Event) []byte) []byte {
	m := e.enc
	if m == nil {
		return enc(b, e)
	}
	m.once[n].Do(func() { m.b[n] = enc(nil, e) })
	return append(b, m.b[n]...)
}

// Encoded returns the event's encoding number n, as AppendEncoded builds it. The bytes of a
// shared encoding belong to every subscriber of the event: the caller must not change them.
func (e *Event) Encoded(n int, enc func(b []byte, e *Event) []byte) []byte {
	m := e.enc
	if m == nil {
		return enc(nil, e)
	}
	m.once[n].Do(func() { m.b[n] = enc(nil, e) })
	return m.b[n]
}
