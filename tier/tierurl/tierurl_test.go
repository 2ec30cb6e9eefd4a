package tierurl_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sedimentio/sediment/tier/file"
	tiers3 "github.com/sedimentio/sediment/tier/s3"
	"github.com/sedimentio/sediment/tier/tierurl"
)

func TestOpenFile(t *testing.T) {
	dir := t.TempDir()
	st, err := tierurl.Open(t.Context(), "file://"+dir+"/tier", nil)
	if err != nil {
		t.Fatal(err)
	}
	if fs, ok := st.(*file.Store); !ok || fs.Root() != filepath.Join(dir, "tier") {
		t.Fatalf("Open = %#v", st)
	}
	if _, err := os.Stat(filepath.Join(dir, "tier")); err != nil {
		t.Errorf("root not created: %v", err)
	}

	t.Chdir(dir)
	st, err = tierurl.Open(t.Context(), "file:rel/tier", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.(*file.Store).Root(); got != filepath.Join(dir, "rel", "tier") {
		t.Errorf("file:rel/tier root = %s", got)
	}
	if _, err := tierurl.Open(t.Context(), "file://localhost"+dir+"/lh", nil); err != nil {
		t.Errorf("file://localhost/...: %v", err)
	}
}

func TestOpenS3(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "id")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_DEFAULT_REGION", "")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	for _, tc := range []struct {
		url, bucket, prefix string
	}{
		{"s3://bkt?endpoint=http://127.0.0.1:9000", "bkt", ""},
		{"s3://bkt/?endpoint=http://127.0.0.1:9000", "bkt", ""},
		{"s3://bkt/a/b?endpoint=http://127.0.0.1:9000&region=eu-west-1&path-style=false", "bkt", "a/b/"},
		{"s3://bkt/a/b/?region=eu-west-1", "bkt", "a/b/"},
		{"s3://bkt/a?region=eu-west-1&create-bucket=false", "bkt", "a/"},
		{"s3://bkt/a?endpoint=http://h:9000&sign-payload=true", "bkt", "a/"},
	} {
		st, err := tierurl.Open(t.Context(), tc.url, nil)
		if err != nil {
			t.Errorf("Open(%q): %v", tc.url, err)
			continue
		}
		s := st.(*tiers3.Store)
		if s.Bucket() != tc.bucket || s.Prefix() != tc.prefix {
			t.Errorf("Open(%q): bucket %q prefix %q", tc.url, s.Bucket(), s.Prefix())
		}
	}
	if _, err := tierurl.Open(t.Context(), "s3://bkt/p", nil); err == nil || !strings.Contains(err.Error(), "region") {
		t.Errorf("Open without region or endpoint = %v; want a region error", err)
	}
}

func TestOpenErrors(t *testing.T) {
	for _, tc := range []struct{ url, want string }{
		{"", "no scheme"},
		{"/abs/path", "no scheme"},
		{"gs://bucket", "unsupported scheme"},
		{"file://relative/path", `names host "relative"`},
		{"file:///tmp/x?sync=1", "no query"},
		{"file:", "no directory"},
		{"s3:///prefix", "no bucket"},
		{"s3://key:secret@bkt/p", "credentials do not go in the URL"},
		{"s3://bkt/p?endpoint=http://h:9000&bogus=1", `unknown parameter "bogus"`},
		{"s3://bkt/p?endpoint=http://h:9000&path-style=maybe", "path-style"},
		{"s3://bkt/p?endpoint=http://h:9000&create-bucket=maybe", "create-bucket"},
		{"s3://bkt/p?endpoint=http://h:9000&sign-payload=maybe", "sign-payload"},
		{"s3://bkt/p?endpoint=127.0.0.1:9000", "endpoint"},
		{"s3://bkt/p?endpoint=ftp://h", "endpoint"},
		{"s3://bkt/../p?endpoint=http://h:9000", "prefix"},
		{"s3://bkt/a//b?endpoint=http://h:9000", "prefix"},
		{"s3://bkt/p?region=a&region=b", "given 2 times"},
		{"%zz", "bad URL"},
	} {
		_, err := tierurl.Open(t.Context(), tc.url, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Open(%q) = %v; want an error containing %q", tc.url, err, tc.want)
		}
	}
}
