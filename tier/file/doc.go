// Package file is the tier object store kept in a local directory: the
// embedded default for development and single-machine setups.
//
// A key "a/b/c" is the file <root>/a/b/c. Put writes a temporary file next to
// the target (named with tier.TempPrefix, which no key may use), fsyncs it,
// renames it over the target and fsyncs the directory, so readers see the old
// or the new object and a crash leaves one of them. Temporary files orphaned
// by a crash are never listed; nothing removes them yet. Delete removes
// directories it leaves empty.
//
// Several processes may share a root (a local cluster pointing all brokers at
// one directory): every operation is safe against concurrent use by other
// processes as well as goroutines.
package file
