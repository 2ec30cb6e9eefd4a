package s3_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/sedimentio/sediment/it/harness"
	"github.com/sedimentio/sediment/tier"
	tiers3 "github.com/sedimentio/sediment/tier/s3"
	"github.com/sedimentio/sediment/tier/tiertest"
	"github.com/sedimentio/sediment/tier/tierurl"
)

var _ tier.ObjectStore = (*tiers3.Store)(nil)

// server is one MinIO for a test and a raw SDK client on it: the second,
// independent view the Store's results are checked against.
type server struct {
	*harness.MinIO
	raw     *s3.Client
	buckets atomic.Int64
}

func startServer(t *testing.T) *server {
	m := harness.MinIOForTest(t)
	raw := s3.New(s3.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(m.Endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(m.AccessKey, m.SecretKey, ""),
	})
	return &server{MinIO: m, raw: raw}
}

// bucket creates a fresh bucket.
func (s *server) bucket(t *testing.T) string {
	t.Helper()
	name := fmt.Sprintf("b%03d", s.buckets.Add(1))
	if _, err := s.raw.CreateBucket(t.Context(), &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("CreateBucket(%s): %v", name, err)
	}
	return name
}

func (s *server) config(bucket, prefix string) tiers3.Config {
	cfg := tiers3.DefaultConfig(bucket)
	cfg.Prefix = prefix
	cfg.Endpoint = s.Endpoint
	cfg.Region = "us-east-1"
	cfg.PathStyle = true
	cfg.Credentials = credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, "")
	return cfg
}

func newStore(t *testing.T, cfg tiers3.Config) *tiers3.Store {
	t.Helper()
	st, err := tiers3.New(t.Context(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func (s *server) rawGet(t *testing.T, bucket, key string) []byte {
	t.Helper()
	out, err := s.raw.GetObject(t.Context(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("raw GetObject(%s/%s): %v", bucket, key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// parts returns the part count in a multipart object's ETag ("<md5>-<parts>"),
// or 0 for an object stored with one PutObject.
func (s *server) parts(t *testing.T, bucket, key string) (size int64, parts int) {
	t.Helper()
	out, err := s.raw.HeadObject(t.Context(), &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("raw HeadObject(%s/%s): %v", bucket, key, err)
	}
	etag := strings.Trim(aws.ToString(out.ETag), `"`)
	if _, n, ok := strings.Cut(etag, "-"); ok {
		parts, _ = strconv.Atoi(n)
	}
	return aws.ToInt64(out.ContentLength), parts
}

func (s *server) pendingUploads(t *testing.T, bucket string) int {
	t.Helper()
	out, err := s.raw.ListMultipartUploads(t.Context(), &s3.ListMultipartUploadsInput{Bucket: aws.String(bucket)})
	if err != nil {
		t.Fatal(err)
	}
	return len(out.Uploads)
}

func TestS3(t *testing.T) {
	srv := startServer(t)

	t.Run("Conformance", func(t *testing.T) {
		tiertest.Run(t, func(t *testing.T) tier.ObjectStore {
			return newStore(t, srv.config(srv.bucket(t), "cluster-1/tier"))
		})
	})
	t.Run("ConformanceNoPrefix", func(t *testing.T) {
		if testing.Short() {
			t.Skip("-short")
		}
		tiertest.Run(t, func(t *testing.T) tier.ObjectStore {
			return newStore(t, srv.config(srv.bucket(t), ""))
		})
	})

	// The prefix is on the bucket's keys, and only the Store's keys are
	// listed: checked with the raw client.
	// CreateBucket makes a missing bucket, and accepts an existing one.
	t.Run("CreateBucket", func(t *testing.T) {
		name := fmt.Sprintf("new%03d", srv.buckets.Add(1))
		cfg := srv.config(name, "")
		if _, err := tiers3.New(t.Context(), cfg, nil); err != nil {
			t.Fatalf("New without CreateBucket on a missing bucket: %v", err)
		}
		if _, err := srv.raw.HeadBucket(t.Context(), &s3.HeadBucketInput{Bucket: aws.String(name)}); err == nil {
			t.Fatal("the bucket exists though CreateBucket was not set")
		}
		cfg.CreateBucket = true
		st := newStore(t, cfg)
		tiertest.MustPut(t, st, "k", []byte("v"))
		if got := srv.rawGet(t, name, "k"); string(got) != "v" {
			t.Fatalf("object in the created bucket: %q", got)
		}
		newStore(t, cfg) // exists now: no error
	})

	t.Run("Prefix", func(t *testing.T) {
		b := srv.bucket(t)
		st := newStore(t, srv.config(b, "p/q"))
		data := tiertest.Data(1, 1000)
		tiertest.MustPut(t, st, "t-0/0.log", data)
		if got := srv.rawGet(t, b, "p/q/t-0/0.log"); !bytes.Equal(got, data) {
			t.Error("raw client read different bytes at prefix+key")
		}
		ext := []byte("written by another client")
		for _, k := range []string{"p/q/ext/obj", "p/qx/outside", "other"} {
			if _, err := srv.raw.PutObject(t.Context(), &s3.PutObjectInput{
				Bucket: aws.String(b), Key: aws.String(k), Body: bytes.NewReader(ext),
			}); err != nil {
				t.Fatal(err)
			}
		}
		if got := tiertest.MustRead(t, st, "ext/obj", len(ext)); !bytes.Equal(got, ext) {
			t.Error("Store read different bytes than the raw client wrote")
		}
		var keys []string
		if err := st.List(t.Context(), "", func(k string, _ int64) error { keys = append(keys, k); return nil }); err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(keys) != "[ext/obj t-0/0.log]" {
			t.Errorf("List = %v", keys)
		}
	})

	// ListObjectsV2 pagination: more keys than one page (MaxKeys 1000).
	t.Run("ListPages", func(t *testing.T) {
		if testing.Short() {
			t.Skip("-short")
		}
		b := srv.bucket(t)
		st := newStore(t, srv.config(b, "pages"))
		const n = 1100
		sem := make(chan struct{}, 32)
		errc := make(chan error, n)
		for i := range n {
			sem <- struct{}{}
			go func() {
				defer func() { <-sem }()
				errc <- st.Put(t.Context(), fmt.Sprintf("k/%05d", i), bytes.NewReader(nil), 0)
			}()
		}
		for range n {
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
		}
		i := 0
		if err := st.List(t.Context(), "k/", func(k string, _ int64) error {
			if want := fmt.Sprintf("k/%05d", i); k != want {
				return fmt.Errorf("key %d = %q, want %q", i, k, want)
			}
			i++
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if i != n {
			t.Errorf("listed %d keys, want %d", i, n)
		}
	})

	// Objects above PartSize go up as multipart uploads, verified whole by
	// the raw client, and leave no upload behind.
	t.Run("Multipart", func(t *testing.T) {
		b := srv.bucket(t)
		cfg := srv.config(b, "mp")
		cfg.PartSize = tiers3.MinPartSize
		cfg.PartConcurrency = 3
		st := newStore(t, cfg)
		data := tiertest.Data(2, 3*tiers3.MinPartSize+12345)
		tiertest.MustPut(t, st, "big", data)
		if got := srv.rawGet(t, b, "mp/big"); !bytes.Equal(got, data) {
			t.Error("raw client read different bytes of the multipart object")
		}
		if n, err := st.Stat(t.Context(), "big"); err != nil || n != int64(len(data)) {
			t.Errorf("Stat = %d, %v", n, err)
		}
		p := make([]byte, 100)
		off := int64(tiers3.MinPartSize - 50) // across a part boundary
		if err := st.ReadAt(t.Context(), "big", p, off); err != nil || !bytes.Equal(p, data[off:off+100]) {
			t.Errorf("ReadAt across a part boundary: %v", err)
		}
		if size, parts := srv.parts(t, b, "mp/big"); size != int64(len(data)) || parts != 4 {
			t.Errorf("raw HeadObject: size %d, %d parts; want %d, 4", size, parts, len(data))
		}
		if n := srv.pendingUploads(t, b); n != 0 {
			t.Errorf("%d multipart uploads left", n)
		}
		// At the part size exactly: one PutObject.
		tiertest.MustPut(t, st, "edge", data[:tiers3.MinPartSize])
		if _, parts := srv.parts(t, b, "mp/edge"); parts != 0 {
			t.Errorf("object of exactly PartSize sent in %d parts", parts)
		}
	})

	// A source that fails mid-object aborts the upload: no object, no parts.
	t.Run("MultipartAbort", func(t *testing.T) {
		b := srv.bucket(t)
		cfg := srv.config(b, "")
		cfg.PartSize = tiers3.MinPartSize
		st := newStore(t, cfg)
		src := failingReaderAt{r: bytes.NewReader(tiertest.Data(3, 3*tiers3.MinPartSize)), failAt: 2 * tiers3.MinPartSize}
		err := st.Put(t.Context(), "big", src, 3*tiers3.MinPartSize)
		if err == nil {
			t.Fatal("Put from a failing source succeeded")
		}
		if _, err := st.Stat(t.Context(), "big"); !st.IsNotExist(err) {
			t.Errorf("Stat after a failed Put = %v; want not-exist", err)
		}
		if n := srv.pendingUploads(t, b); n != 0 {
			t.Errorf("%d multipart uploads left after a failed Put", n)
		}
	})

	// The default part size: > 64 MiB is multipart.
	t.Run("MultipartDefault", func(t *testing.T) {
		if testing.Short() {
			t.Skip("-short")
		}
		b := srv.bucket(t)
		st := newStore(t, srv.config(b, "seg"))
		data := tiertest.Data(4, 64<<20+1<<20)
		tiertest.MustPut(t, st, "t-0/00000000000000000000.log", data)
		if got := tiertest.MustRead(t, st, "t-0/00000000000000000000.log", len(data)); !bytes.Equal(got, data) {
			t.Error("read back different bytes")
		}
		if size, parts := srv.parts(t, b, "seg/t-0/00000000000000000000.log"); size != int64(len(data)) || parts != 2 {
			t.Errorf("raw HeadObject: size %d, %d parts; want %d, 2", size, parts, len(data))
		}
	})

	// A missing bucket is a configuration error, not a missing key.
	t.Run("NoSuchBucket", func(t *testing.T) {
		st := newStore(t, srv.config("no-such-bucket", ""))
		_, err := st.Stat(t.Context(), "k")
		if err == nil || st.IsNotExist(err) {
			t.Errorf("Stat in a missing bucket = %v; want an error that is not not-exist", err)
		}
		err = st.ReadAt(t.Context(), "k", make([]byte, 1), 0)
		if err == nil || st.IsNotExist(err) {
			t.Errorf("ReadAt in a missing bucket = %v; want an error that is not not-exist", err)
		}
	})

	t.Run("BadCredentials", func(t *testing.T) {
		b := srv.bucket(t)
		cfg := srv.config(b, "")
		cfg.Credentials = credentials.NewStaticCredentialsProvider(srv.AccessKey, "wrong-secret", "")
		st := newStore(t, cfg)
		if err := st.Put(t.Context(), "k", bytes.NewReader([]byte("x")), 1); err == nil {
			t.Error("Put with a wrong secret succeeded")
		}
	})

	// tierurl.Open reads credentials from the AWS environment.
	t.Run("Open", func(t *testing.T) {
		b := srv.bucket(t)
		t.Setenv("AWS_ACCESS_KEY_ID", srv.AccessKey)
		t.Setenv("AWS_SECRET_ACCESS_KEY", srv.SecretKey)
		t.Setenv("AWS_CONFIG_FILE", "/nonexistent")
		t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
		st, err := tierurl.Open(t.Context(), "s3://"+b+"/opened/prefix?endpoint="+url.QueryEscape(srv.Endpoint), nil)
		if err != nil {
			t.Fatal(err)
		}
		tiertest.MustPut(t, st, "k", []byte("via Open"))
		if got := srv.rawGet(t, b, "opened/prefix/k"); string(got) != "via Open" {
			t.Errorf("raw read %q", got)
		}
	})

	t.Run("Faults", func(t *testing.T) { testFaults(t, srv) })
}

type failingReaderAt struct {
	r      io.ReaderAt
	failAt int64
}

func (f failingReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > f.failAt {
		return 0, errors.New("disk on fire")
	}
	return f.r.ReadAt(p, off)
}

// testFaults puts a fault-injecting proxy between the Store and MinIO.
func testFaults(t *testing.T, srv *server) {
	target, err := url.Parse(srv.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	// fault, if set, handles a request instead of MinIO; returning false
	// passes it on.
	var fault atomic.Pointer[func(w http.ResponseWriter, r *http.Request) bool]
	ps := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f := fault.Load(); f != nil && (*f)(w, r) {
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(ps.Close)
	setFault := func(f func(w http.ResponseWriter, r *http.Request) bool) {
		if f == nil {
			fault.Store(nil)
			return
		}
		fault.Store(&f)
	}

	b := srv.bucket(t)
	cfg := srv.config(b, "f")
	cfg.Endpoint = ps.URL
	cfg.MaxAttempts = 3
	cfg.MaxBackoff = 50 * time.Millisecond
	cfg.RequestTimeout = time.Second
	st := newStore(t, cfg)
	data := tiertest.Data(5, 10000)
	tiertest.MustPut(t, st, "obj", data)

	t.Run("SlowDownRetried", func(t *testing.T) {
		defer setFault(nil)
		var n atomic.Int64
		setFault(func(w http.ResponseWriter, r *http.Request) bool {
			if n.Add(1)%2 == 1 { // every other request
				w.Header().Set("Content-Type", "application/xml")
				w.WriteHeader(http.StatusServiceUnavailable)
				io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>`)
				return true
			}
			return false
		})
		tiertest.MustPut(t, st, "obj2", data)
		if got := tiertest.MustRead(t, st, "obj2", len(data)); !bytes.Equal(got, data) {
			t.Error("wrong bytes")
		}
		if n.Load() < 4 {
			t.Errorf("only %d requests: no retries happened", n.Load())
		}
	})

	t.Run("ServerErrorsExhausted", func(t *testing.T) {
		defer setFault(nil)
		var n atomic.Int64
		setFault(func(w http.ResponseWriter, r *http.Request) bool {
			n.Add(1)
			w.WriteHeader(http.StatusInternalServerError)
			return true
		})
		err := st.ReadAt(t.Context(), "obj", make([]byte, 10), 0)
		if err == nil || st.IsNotExist(err) {
			t.Errorf("ReadAt under 500s = %v", err)
		}
		if n.Load() != int64(cfg.MaxAttempts) {
			t.Errorf("%d attempts, want MaxAttempts = %d", n.Load(), cfg.MaxAttempts)
		}
	})

	// A body cut short is an error, and not one that looks like the end of
	// the object.
	t.Run("TruncatedBody", func(t *testing.T) {
		defer setFault(nil)
		setFault(func(w http.ResponseWriter, r *http.Request) bool {
			if r.Method != http.MethodGet {
				return false
			}
			rec := httptest.NewRecorder()
			proxy.ServeHTTP(rec, r)
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.WriteHeader(rec.Code)
			w.Write(rec.Body.Bytes()[:rec.Body.Len()/2])
			// Returning with fewer bytes than Content-Length makes the
			// server close the connection.
			return true
		})
		p := make([]byte, 1000)
		err := st.ReadAt(t.Context(), "obj", p, 100)
		if err == nil || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			t.Errorf("ReadAt with a truncated body = %v; want a transport error", err)
		}
		t.Log(err)
	})

	// A server that sends other bytes than asked for is caught.
	t.Run("WrongRange", func(t *testing.T) {
		defer setFault(nil)
		setFault(func(w http.ResponseWriter, r *http.Request) bool {
			if r.Method != http.MethodGet {
				return false
			}
			w.Header().Set("Content-Range", "bytes 0-9/10000")
			w.Header().Set("Content-Length", "10")
			w.WriteHeader(http.StatusPartialContent)
			w.Write(data[:10])
			return true
		})
		err := st.ReadAt(t.Context(), "obj", make([]byte, 10), 500)
		if err == nil {
			t.Error("ReadAt accepted bytes 0-9 for a read at 500")
		}
		t.Log(err)
	})

	// Uploads over plain HTTP go as UNSIGNED-PAYLOAD with a CRC32C checksum
	// header (sign-payload=false, the default), or with the body's SHA-256
	// signed (SignPayload).
	t.Run("UnsignedPayload", func(t *testing.T) {
		defer setFault(nil)
		type seen struct{ sha, crc string }
		var got atomic.Pointer[seen]
		setFault(func(w http.ResponseWriter, r *http.Request) bool {
			if r.Method == http.MethodPut {
				got.Store(&seen{sha: r.Header.Get("X-Amz-Content-Sha256"), crc: r.Header.Get("X-Amz-Checksum-Crc32c")})
			}
			return false
		})
		crc := crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli))
		wantCRC := base64.StdEncoding.EncodeToString(binary.BigEndian.AppendUint32(nil, crc))
		sum := sha256.Sum256(data)
		signed := cfg
		signed.SignPayload = true
		for _, tc := range []struct {
			st      *tiers3.Store
			wantSHA string
		}{{st, "UNSIGNED-PAYLOAD"}, {newStore(t, signed), hex.EncodeToString(sum[:])}} {
			got.Store(nil)
			tiertest.MustPut(t, tc.st, "unsigned", data)
			g := got.Load()
			if g == nil || g.sha != tc.wantSHA || g.crc != wantCRC {
				t.Errorf("PUT headers %+v; want x-amz-content-sha256 %s, x-amz-checksum-crc32c %s", g, tc.wantSHA, wantCRC)
			}
			if back := tiertest.MustRead(t, tc.st, "unsigned", len(data)); !bytes.Equal(back, data) {
				t.Error("read back different bytes")
			}
		}
	})

	// A body changed on the way (the checksum header left as signed) is
	// refused by the server: the unsigned payload keeps integrity end to end.
	t.Run("CorruptBodyRefused", func(t *testing.T) {
		defer setFault(nil)
		setFault(func(w http.ResponseWriter, r *http.Request) bool {
			if r.Method != http.MethodPut {
				return false
			}
			body, err := io.ReadAll(r.Body)
			if err != nil {
				w.WriteHeader(http.StatusBadRequest)
				return true
			}
			body[len(body)/2] ^= 1
			r.Body = io.NopCloser(bytes.NewReader(body))
			return false
		})
		err := st.Put(t.Context(), "corrupt", bytes.NewReader(data), int64(len(data)))
		if err == nil {
			t.Fatal("MinIO stored a body that does not match its CRC32C header")
		}
		t.Log(err)
		setFault(nil)
		if _, err := st.Stat(t.Context(), "corrupt"); !st.IsNotExist(err) {
			t.Errorf("Stat of the refused object = %v; want not-exist", err)
		}
	})

	t.Run("RequestTimeout", func(t *testing.T) {
		defer setFault(nil)
		setFault(func(w http.ResponseWriter, r *http.Request) bool {
			select {
			case <-r.Context().Done():
			case <-time.After(10 * time.Second):
			}
			return true
		})
		start := time.Now()
		err := st.ReadAt(t.Context(), "obj", make([]byte, 10), 0)
		if err == nil {
			t.Fatal("ReadAt against a stalled server succeeded")
		}
		if d := time.Since(start); d > time.Duration(cfg.MaxAttempts)*(cfg.RequestTimeout+time.Second) {
			t.Errorf("took %v", d)
		}
	})

	t.Run("Cancel", func(t *testing.T) {
		defer setFault(nil)
		setFault(func(w http.ResponseWriter, r *http.Request) bool {
			<-r.Context().Done()
			return true
		})
		ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
		defer cancel()
		start := time.Now()
		if err := st.ReadAt(ctx, "obj", make([]byte, 10), 0); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("ReadAt with an expiring context = %v", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("cancel took %v", d)
		}
	})
}
