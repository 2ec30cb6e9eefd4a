package tier

import "testing"

func TestObjectKeyRoundTrip(t *testing.T) {
	k := ObjectKey("xP5679LQ-_WqYH68Z-ZTaA", 3, 1234, 7, "abcDEF_-0123456789abcd", KindLog)
	tid, p, base, epoch, up, kind, err := ParseObjectKey(k)
	if err != nil {
		t.Fatal(err)
	}
	if tid != "xP5679LQ-_WqYH68Z-ZTaA" || p != 3 || base != 1234 || epoch != 7 || up != "abcDEF_-0123456789abcd" || kind != KindLog {
		t.Fatalf("round trip of %q: %s %d %d %d %s %s", k, tid, p, base, epoch, up, kind)
	}
	if err := CheckKey(k); err != nil {
		t.Fatalf("%q is not a valid object key: %v", k, err)
	}
	if _, _, _, _, _, _, err := ParseObjectKey("manifests/x/0/manifest.json"); err == nil {
		t.Fatal("manifest key parsed as a segment object key")
	}
}
