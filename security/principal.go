package security

import (
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"
)

// Principal is a Kafka principal, "Type:Name" (KafkaPrincipal). Connections carry one:
// Anonymous on PLAINTEXT, the SASL user, or the mapped certificate subject on SSL.
type Principal struct {
	Type string
	Name string
}

// UserType is the principal type of every principal Sediment authenticates.
const UserType = "User"

// Anonymous is the principal of unauthenticated connections (User:ANONYMOUS).
var Anonymous = Principal{Type: UserType, Name: "ANONYMOUS"}

// UserPrincipal returns User:name.
func UserPrincipal(name string) Principal { return Principal{Type: UserType, Name: name} }

// String returns "Type:Name", the form ACLs and super.users use.
func (p Principal) String() string { return p.Type + ":" + p.Name }

// ParsePrincipal parses "Type:Name" at the first colon, as Kafka does; both parts must be
// non-empty ("User:CN=a,O=b:c" is type User, name "CN=a,O=b:c").
func ParsePrincipal(s string) (Principal, error) {
	typ, name, ok := strings.Cut(s, ":")
	if !ok || typ == "" || name == "" {
		return Principal{}, fmt.Errorf("security: principal %q is not of the form Type:Name", s)
	}
	return Principal{Type: typ, Name: name}, nil
}

// ErrNoMatchingRule reports a certificate subject that no principal mapping rule applies to.
var ErrNoMatchingRule = errors.New("security: no principal mapping rule applies")

// PrincipalMapper maps certificate subjects to principal names with Kafka's
// ssl.principal.mapping.rules: a comma-separated list of DEFAULT (the subject DN unchanged)
// and RULE:pattern/replacement/[LU] items, tried in order; the first whose pattern matches
// the whole DN gives the name, replacing every match of the pattern with the replacement
// ($1, ${name} refer to groups; L or U lowercases or uppercases the result). Commas inside a
// pattern need no escaping; a '/' in a pattern or replacement is written "\/".
//
// Patterns are Go regular expressions (RE2): Java's syntax without backreferences and
// lookaround. Mistakes that Kafka reports only when a certificate arrives (a "$1" without
// groups, a dangling "\" or "$") are refused here, when the rules are parsed.
//
// Safe for concurrent use.
type PrincipalMapper struct {
	rules []mappingRule
	text  string
}

type mappingRule struct {
	isDefault   bool
	full        *regexp.Regexp // ^(?:pattern)$, for the whole-DN test (Java's matches())
	re          *regexp.Regexp // pattern, for the replacement (Java's replaceAll)
	replacement string
	lower       bool
	upper       bool
}

// DefaultPrincipalMappingRules is Kafka's default: the DN itself.
const DefaultPrincipalMappingRules = "DEFAULT"

// isJavaSpace is Java's \s.
func isJavaSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\x0b' || c == '\f' || c == '\r'
}

// ParsePrincipalMappingRules parses ssl.principal.mapping.rules.
func ParsePrincipalMappingRules(s string) (*PrincipalMapper, error) {
	m := &PrincipalMapper{text: s}
	rest := strings.TrimFunc(s, func(r rune) bool { return r < utf8.RuneSelf && isJavaSpace(byte(r)) })
	for {
		rest = strings.TrimLeftFunc(rest, func(r rune) bool { return r < utf8.RuneSelf && isJavaSpace(byte(r)) })
		var (
			r   mappingRule
			n   int
			err error
		)
		switch {
		case rest == "":
			if len(m.rules) == 0 {
				return nil, fmt.Errorf("%w: ssl.principal.mapping.rules %q has no rule", ErrInvalidConfig, s)
			}
			return m, nil
		case rest[0] == ',': // an empty item, ignored as Kafka does
			rest = rest[1:]
			continue
		case strings.HasPrefix(rest, "DEFAULT"):
			r, n = mappingRule{isDefault: true}, len("DEFAULT")
		case strings.HasPrefix(rest, "RULE:"):
			r, n, err = parseRule(rest)
		default:
			err = errors.New("not DEFAULT or RULE:pattern/replacement/[LU]")
		}
		if err == nil {
			// Whitespace, then a comma or the end, must follow.
			for n < len(rest) && isJavaSpace(rest[n]) {
				n++
			}
			if n < len(rest) && rest[n] != ',' {
				err = fmt.Errorf("unexpected %q after the rule", truncate(rest[n:], 20))
			}
		}
		if err != nil {
			item, _, _ := strings.Cut(rest, ",")
			return nil, fmt.Errorf("%w: ssl.principal.mapping.rules: invalid rule %q: %w", ErrInvalidConfig, truncate(item, 80), err)
		}
		m.rules = append(m.rules, r)
		rest = rest[n:]
		if rest != "" {
			rest = rest[1:] // the comma
		}
	}
}

// parseRule parses "RULE:pattern/replacement/[LU]" at the start of s and returns how many
// bytes it used. A backslash escapes the next character (kept, for the regexp and the
// replacement to interpret).
func parseRule(s string) (mappingRule, int, error) {
	i := len("RULE:")
	part := func() (string, error) {
		start := i
		for ; i < len(s); i++ {
			switch s[i] {
			case '\\':
				i++
			case '/':
				p := s[start:i]
				i++
				return p, nil
			}
		}
		return "", errors.New("want RULE:pattern/replacement/[LU]")
	}
	pattern, err := part()
	if err != nil {
		return mappingRule{}, 0, err
	}
	replacement, err := part()
	if err != nil {
		return mappingRule{}, 0, err
	}
	r := mappingRule{replacement: replacement}
	if i < len(s) {
		switch s[i] {
		case 'L':
			r.lower = true
			i++
		case 'U':
			r.upper = true
			i++
		}
	}
	if r.re, err = regexp.Compile(pattern); err != nil {
		return mappingRule{}, 0, err
	}
	if r.full, err = regexp.Compile(`^(?:` + pattern + `)$`); err != nil {
		return mappingRule{}, 0, err
	}
	// A dry run finds replacement errors now rather than at the first certificate.
	if _, err := expandJava(nil, replacement, r.re, "", make([]int, 2*(r.re.NumSubexp()+1))); err != nil {
		return mappingRule{}, 0, err
	}
	return r, i, nil
}

// String returns the rules as configured.
func (m *PrincipalMapper) String() string { return m.text }

// Map returns the principal name for a subject DN in RFC 2253 form (DistinguishedName), or
// ErrNoMatchingRule.
func (m *PrincipalMapper) Map(dn string) (string, error) {
	for _, r := range m.rules {
		if r.isDefault {
			return dn, nil
		}
		if !r.full.MatchString(dn) {
			continue
		}
		var out []byte
		last := 0
		for _, loc := range r.re.FindAllStringSubmatchIndex(dn, -1) {
			out = append(out, dn[last:loc[0]]...)
			var err error
			if out, err = expandJava(out, r.replacement, r.re, dn, loc); err != nil {
				return "", err // parseRule's dry run rules this out
			}
			last = loc[1]
		}
		name := string(append(out, dn[last:]...))
		switch {
		case r.lower:
			name = strings.ToLower(name)
		case r.upper:
			name = strings.ToUpper(name)
		}
		return name, nil
	}
	return "", fmt.Errorf("%w to %q (rules %q)", ErrNoMatchingRule, dn, m.text)
}

// expandJava appends replacement with its group references expanded the way Java's
// Matcher.appendReplacement does after Kafka's escaping of back references to missing
// groups: "\c" is c; "${name}" is the named group; "$" and digits is the group of the
// longest leading number not above the group count, except that a reference whose first
// digit (not 0) exceeds the group count is literal text (Kafka's SslPrincipalMapper).
// loc holds the match's submatch indexes.
func expandJava(dst []byte, replacement string, re *regexp.Regexp, src string, loc []int) ([]byte, error) {
	groups := re.NumSubexp()
	group := func(n int) []byte {
		if loc[2*n] < 0 {
			return dst // an unmatched group is empty
		}
		return append(dst, src[loc[2*n]:loc[2*n+1]]...)
	}
	for i := 0; i < len(replacement); i++ {
		c := replacement[i]
		switch {
		case c == '\\':
			i++
			if i == len(replacement) {
				return nil, errors.New("replacement ends with a lone backslash")
			}
			dst = append(dst, replacement[i])
		case c != '$':
			dst = append(dst, c)
		case i+1 < len(replacement) && replacement[i+1] == '{':
			end := strings.IndexByte(replacement[i:], '}')
			if end < 0 {
				return nil, errors.New("replacement has an unterminated ${name}")
			}
			name := replacement[i+2 : i+end]
			n := re.SubexpIndex(name)
			if n < 0 {
				return nil, fmt.Errorf("replacement refers to no group named %q", name)
			}
			dst = group(n)
			i += end
		case i+1 < len(replacement) && replacement[i+1] >= '0' && replacement[i+1] <= '9':
			n := int(replacement[i+1] - '0')
			if n > groups {
				if groups == 0 {
					return nil, fmt.Errorf("replacement refers to group %d of a pattern without groups", n)
				}
				dst = append(dst, '$') // Kafka escapes it: literal text
				continue
			}
			i++
			for i+1 < len(replacement) && replacement[i+1] >= '0' && replacement[i+1] <= '9' {
				next := n*10 + int(replacement[i+1]-'0')
				if next > groups {
					break
				}
				n = next
				i++
			}
			dst = group(n)
		default:
			return nil, errors.New("replacement has a '$' that is not a group reference (write \\$)")
		}
	}
	return dst, nil
}

// DistinguishedName renders an X.509 subject or issuer (DER, e.g. Certificate.RawSubject) the
// way Java's X500Principal.getName() does (RFC 2253), which is what Kafka maps and puts in
// User:<dn> principals: RDNs from last to first, separated by ','; the attributes of a
// multi-valued RDN in encoded order, joined by '+'; keywords only for CN, C, L, ST, O, OU,
// STREET, DC and UID, every other type as its dotted OID with the value as '#' and the
// lowercase hex of its DER encoding (also for values that are not strings); in string
// values, each of ,=+<>#;"\ escaped with '\', NUL as \00, and leading and trailing spaces
// (and carriage returns) escaped.
func DistinguishedName(der []byte) (string, error) {
	var seq []relativeDistinguishedNameSET
	rest, err := asn1.Unmarshal(der, &seq)
	if err != nil {
		return "", fmt.Errorf("security: parsing a distinguished name: %w", err)
	}
	if len(rest) > 0 {
		return "", fmt.Errorf("security: %d bytes after a distinguished name", len(rest))
	}
	var b strings.Builder
	for i := len(seq) - 1; i >= 0; i-- {
		if i != len(seq)-1 {
			b.WriteByte(',')
		}
		for j, atv := range seq[i] {
			if j > 0 {
				b.WriteByte('+')
			}
			writeAVA(&b, atv)
		}
	}
	return b.String(), nil
}

type attributeTypeAndValue struct {
	Type  asn1.ObjectIdentifier
	Value asn1.RawValue
}

// relativeDistinguishedNameSET decodes as a SET OF (encoding/asn1 keys on the "SET" suffix).
type relativeDistinguishedNameSET []attributeTypeAndValue

// rfc2253Keywords are the attribute types Java names in RFC 2253 output.
var rfc2253Keywords = map[string]string{
	"2.5.4.3":                    "CN",
	"2.5.4.6":                    "C",
	"2.5.4.7":                    "L",
	"2.5.4.8":                    "ST",
	"2.5.4.10":                   "O",
	"2.5.4.11":                   "OU",
	"2.5.4.9":                    "STREET",
	"0.9.2342.19200300.100.1.25": "DC",
	"0.9.2342.19200300.100.1.1":  "UID",
}

func writeAVA(b *strings.Builder, atv attributeTypeAndValue) {
	oid := atv.Type.String()
	keyword, ok := rfc2253Keywords[oid]
	v := atv.Value
	if !ok || v.Class != asn1.ClassUniversal {
		ok = false
	} else {
		switch v.Tag {
		case asn1.TagUTF8String, asn1.TagPrintableString, asn1.TagT61String, asn1.TagIA5String,
			asn1.TagGeneralString, asn1.TagBMPString:
		default:
			ok = false
		}
	}
	if !ok {
		if keyword == "" {
			keyword = oid
		}
		b.WriteString(keyword)
		b.WriteString("=#")
		b.WriteString(hex.EncodeToString(v.FullBytes))
		return
	}
	b.WriteString(keyword)
	b.WriteByte('=')
	// Java reads the bytes as UTF-8 whatever the string type, one replacement character per
	// malformed byte.
	var esc []rune
	for data := v.Bytes; len(data) > 0; {
		r, n := utf8.DecodeRune(data)
		data = data[n:]
		switch {
		case strings.ContainsRune(",=+<>#;\"\\", r):
			esc = append(esc, '\\', r)
		case r == 0:
			esc = append(esc, '\\', '0', '0')
		default:
			esc = append(esc, r)
		}
	}
	lead, trail := 0, len(esc)-1
	for lead < len(esc) && (esc[lead] == ' ' || esc[lead] == '\r') {
		lead++
	}
	for trail >= 0 && (esc[trail] == ' ' || esc[trail] == '\r') {
		trail--
	}
	for i, r := range esc {
		if i < lead || i > trail {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
}

// CertificatePrincipal returns the principal of a TLS client: User:<mapped subject DN> of
// its leaf certificate, or Anonymous when it sent none (ssl.client.auth=requested), as
// Kafka's DefaultKafkaPrincipalBuilder does.
func CertificatePrincipal(peerCertificates []*x509.Certificate, m *PrincipalMapper) (Principal, error) {
	if len(peerCertificates) == 0 {
		return Anonymous, nil
	}
	dn, err := DistinguishedName(peerCertificates[0].RawSubject)
	if err != nil {
		return Principal{}, err
	}
	name, err := m.Map(dn)
	if err != nil {
		return Principal{}, err
	}
	return UserPrincipal(name), nil
}
