package security

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParsePrincipal(t *testing.T) {
	p, err := ParsePrincipal("User:CN=a,O=b:c")
	if err != nil || p.Type != "User" || p.Name != "CN=a,O=b:c" || p.String() != "User:CN=a,O=b:c" {
		t.Fatalf("ParsePrincipal = %+v, %v", p, err)
	}
	for _, bad := range []string{"", "alice", ":alice", "User:"} {
		if _, err := ParsePrincipal(bad); err == nil {
			t.Errorf("ParsePrincipal(%q) succeeded", bad)
		}
	}
	if Anonymous.String() != "User:ANONYMOUS" {
		t.Errorf("Anonymous = %s", Anonymous)
	}
}

// Cases from Kafka's documentation and SslPrincipalMapperTest.
func TestPrincipalMappingRules(t *testing.T) {
	cases := []struct {
		rules string
		dn    string
		want  string // "" means ErrNoMatchingRule
	}{
		{"DEFAULT", "CN=Duke,OU=JavaSoft,O=Sun Microsystems,C=US", "CN=Duke,OU=JavaSoft,O=Sun Microsystems,C=US"},
		{"RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/,DEFAULT", "CN=kafka-producer,OU=ServiceUsers,O=Org,C=US", "kafka-producer"},
		{"RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/,DEFAULT", "CN=Duke,OU=JavaSoft,O=Sun,C=US", "CN=Duke,OU=JavaSoft,O=Sun,C=US"},
		{"RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L", "CN=Duke,OU=JavaSoft,O=Sun,L=X,ST=Y,C=US", "duke@javasoft"},
		{"RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/U", "CN=Duke,OU=JavaSoft,O=Sun,L=X,ST=Y,C=US", "DUKE@JAVASOFT"},
		{"RULE:^cn=(.*?),ou=(.*?),dc=(.*?),dc=(.*?)$/$1@$2/U", "cn=duke,ou=JavaSoft,dc=example,dc=com", "DUKE@JAVASOFT"},
		{" RULE:^CN=(.*),OU=.*$/$1/ , DEFAULT ", "CN=a,OU=b", "a"},
		{"RULE:^CN=([^,]*).*$/user\\/$1/", "CN=a,OU=b", "user/a"},
		{"RULE:^CN=(.*)$/$1@$2$9/", "CN=x", "x@$2$9"}, // references to missing groups stay literal
		{"RULE:^(C)(N)(=)(x)(.)(.)(.)(.)(.)(.)(.)(.)$/$12$13/", "CN=x........", ".C3"},
		{"RULE:^CN=(?P<who>[^,]*).*$/${who}!/", "CN=a,OU=b", "a!"},
		{"RULE:^CN=(.*)$/$0/", "CN=x", "CN=x"},
		{"RULE:^CN=(.*)$/\\$1/", "CN=x", "$1"},
		{"RULE:^CN=(.*?),OU=.*$/$1/", "CN=a,O=b", ""},
		{"RULE:x/y/", "axa", ""}, // the pattern must match the whole DN
		{"RULE:a/b/", "a", "b"},
		{",DEFAULT,", "x", "x"},
	}
	for _, c := range cases {
		m, err := ParsePrincipalMappingRules(c.rules)
		if err != nil {
			t.Errorf("%q: %v", c.rules, err)
			continue
		}
		got, err := m.Map(c.dn)
		if c.want == "" {
			if !errors.Is(err, ErrNoMatchingRule) {
				t.Errorf("%q on %q = %q, %v; want no match", c.rules, c.dn, got, err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%q on %q = %q, %v; want %q", c.rules, c.dn, got, err, c.want)
		}
	}
	for _, bad := range []string{
		"", " , ",
		"DEFAULTS", "DEFAULT RULE:a/b/", "RULE:a/b", "RULE:a/b/Lx", "RULE:a/b/L x", "RULE:(/b/",
		"RULE:a/$1/", "RULE:(a)/$x/", "RULE:(a)/${nope}/", "RULE:(a)/${x/", "RULE:(a)/x\\/",
		"RULE:a/b/,foo", "rule:a/b/",
	} {
		if _, err := ParsePrincipalMappingRules(bad); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("ParsePrincipalMappingRules(%q) = %v", bad, err)
		}
	}
}

func rdn(oid asn1.ObjectIdentifier, v asn1.RawValue) []attributeTypeAndValue {
	return []attributeTypeAndValue{{Type: oid, Value: v}}
}

func str(tag int, s string) asn1.RawValue {
	return asn1.RawValue{Class: asn1.ClassUniversal, Tag: tag, Bytes: []byte(s)}
}

// TestDistinguishedName checks the RFC 2253 rendering against what Java's
// X500Principal.getName() prints for the same names.
func TestDistinguishedName(t *testing.T) {
	oid := func(s string) asn1.ObjectIdentifier {
		var o asn1.ObjectIdentifier
		for part := range strings.SplitSeq(s, ".") {
			n := 0
			for _, c := range part {
				n = n*10 + int(c-'0')
			}
			o = append(o, n)
		}
		return o
	}
	cn, ou, o, c := oid("2.5.4.3"), oid("2.5.4.11"), oid("2.5.4.10"), oid("2.5.4.6")
	cases := []struct {
		name []relativeDistinguishedNameSET
		want string
	}{
		{[]relativeDistinguishedNameSET{
			rdn(c, str(asn1.TagPrintableString, "US")),
			rdn(o, str(asn1.TagUTF8String, "Acme, Inc.")),
			rdn(ou, str(asn1.TagUTF8String, "eng")),
			rdn(cn, str(asn1.TagUTF8String, "alice")),
		}, `CN=alice,OU=eng,O=Acme\, Inc.,C=US`},
		{[]relativeDistinguishedNameSET{rdn(cn, str(asn1.TagUTF8String, ` #a+b=c;d<e>f"g\h `))}, `CN=\ \#a\+b\=c\;d\<e\>f\"g\\h\ `},
		{[]relativeDistinguishedNameSET{rdn(cn, str(asn1.TagUTF8String, "a\x00b_é@*"))}, `CN=a\00b_é@*`},
		{[]relativeDistinguishedNameSET{rdn(oid("1.2.840.113549.1.9.1"), str(asn1.TagIA5String, "a@b.c"))}, "1.2.840.113549.1.9.1=#16056140622e63"},
		{[]relativeDistinguishedNameSET{rdn(oid("2.5.4.5"), str(asn1.TagPrintableString, "42"))}, "2.5.4.5=#13023432"},
		{[]relativeDistinguishedNameSET{rdn(cn, asn1.RawValue{Class: asn1.ClassUniversal, Tag: asn1.TagInteger, Bytes: []byte{7}})}, "CN=#020107"},
		{[]relativeDistinguishedNameSET{{
			{Type: cn, Value: str(asn1.TagUTF8String, "a")},
			{Type: oid("0.9.2342.19200300.100.1.1"), Value: str(asn1.TagUTF8String, "b")},
		}, rdn(oid("0.9.2342.19200300.100.1.25"), str(asn1.TagIA5String, "com"))}, "DC=com,CN=a+UID=b"},
		{nil, ""},
	}
	for _, tc := range cases {
		der, err := asn1.Marshal(tc.name)
		if err != nil {
			t.Fatal(err)
		}
		got, err := DistinguishedName(der)
		if err != nil || got != tc.want {
			t.Errorf("DistinguishedName = %q, %v; want %q", got, err, tc.want)
		}
	}
	// A name built by crypto/x509's pkix.Name, in the order certificates carry it.
	der, err := asn1.Marshal(pkix.Name{CommonName: "writeuser", OrganizationalUnit: []string{"Unknown"},
		Organization: []string{"Unknown"}, Locality: []string{"Unknown"}, Province: []string{"Unknown"},
		Country: []string{"Unknown"}}.ToRDNSequence())
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := DistinguishedName(der); got != "CN=writeuser,OU=Unknown,O=Unknown,L=Unknown,ST=Unknown,C=Unknown" {
		t.Errorf("DistinguishedName = %q", got)
	}
	for _, bad := range [][]byte{nil, {0x30}, {0x30, 0x00, 0x00}, {0x04, 0x00}} {
		if _, err := DistinguishedName(bad); err == nil {
			t.Errorf("DistinguishedName(%x) succeeded", bad)
		}
	}
}

// FuzzPrincipalMappingRules: parsing never panics; rules that parse map any DN without
// panicking, and an error is only ever ErrNoMatchingRule.
func FuzzPrincipalMappingRules(f *testing.F) {
	for _, s := range []string{"DEFAULT", "RULE:^CN=(.*?),OU=(.*)$/$1@$2/L,DEFAULT", "RULE:a\\/b/c\\/d/U", "RULE:(x)/$12${n}/", ",,"} {
		f.Add(s, "CN=a,OU=b")
	}
	f.Fuzz(func(t *testing.T, rules, dn string) {
		m, err := ParsePrincipalMappingRules(rules)
		if err != nil {
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("error %v does not wrap ErrInvalidConfig", err)
			}
			return
		}
		if _, err := m.Map(dn); err != nil && !errors.Is(err, ErrNoMatchingRule) {
			t.Fatalf("Map(%q) with %q: %v", dn, rules, err)
		}
	})
}

// FuzzDistinguishedName: never panics on arbitrary DER; what parses renders
// deterministically.
func FuzzDistinguishedName(f *testing.F) {
	der, _ := asn1.Marshal(pkix.Name{CommonName: "a", Organization: []string{"b"}}.ToRDNSequence())
	f.Add(der)
	f.Add([]byte{0x30, 0x00})
	f.Fuzz(func(t *testing.T, der []byte) {
		a, err := DistinguishedName(der)
		if err != nil {
			return
		}
		if b, _ := DistinguishedName(der); a != b {
			t.Fatalf("%q then %q", a, b)
		}
	})
}

// TestDistinguishedNameJava compares with Java itself: testdata/dn/NN.der are names built
// to probe the corner cases (escapes, NUL, non-ASCII, BMP and T61 strings, non-string values,
// types without an RFC 2253 keyword, multi-valued RDNs, leading and trailing spaces and
// carriage returns) and NN.java.txt what OpenJDK 17's X500Principal.getName() printed for
// each, byte for byte.
func TestDistinguishedNameJava(t *testing.T) {
	ders, err := filepath.Glob("testdata/dn/*.der")
	if err != nil || len(ders) < 20 {
		t.Fatalf("%d golden names: %v", len(ders), err)
	}
	for _, f := range ders {
		der, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(strings.TrimSuffix(f, ".der") + ".java.txt")
		if err != nil {
			t.Fatal(err)
		}
		if got, err := DistinguishedName(der); err != nil || got != string(want) {
			t.Errorf("%s: %q, %v; Java says %q", f, got, err, want)
		}
	}
}
