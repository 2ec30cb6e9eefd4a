// Package tierurl turns the --tier URL of `sediment serve` into a
// [tier.ObjectStore]: file:///abs/path or file:rel/path selects the tier/file
// backend, s3://bucket/prefix?endpoint=...&region=... the tier/s3 backend.
//
// It is the one package that knows every backend. Package tier defines the
// interface and the key rules and imports no backend, so that each backend
// can import tier and assert `var _ tier.ObjectStore = (*Store)(nil)`; this
// package sits above all of them, and cmd/sediment is its caller. A program
// that wants a single backend can call tier/file's or tier/s3's New directly.
//
// The name follows tier/tiertest: a noun for what the package handles (the
// tier URL), which leaves "open", "url" and "store" free for callers' variables.
package tierurl
