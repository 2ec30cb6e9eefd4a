package meta

import (
	"os"
	"strings"
	"testing"
)

// TestKeyspaceDocSecurity checks the acls/, users/ and sasl-mask-secret examples of
// KEYSPACE.md against what this package writes.
func TestKeyspaceDocSecurity(t *testing.T) {
	doc, err := os.ReadFile("KEYSPACE.md")
	if err != nil {
		t.Fatal(err)
	}
	values := []string{
		encode(aclValue{V: valueVersion, ACLRecord: ACLRecord{ResourceType: 2, ResourceName: "orders", PatternType: 3,
			Principal: "User:alice", Host: "*", Operation: 3, Permission: 3}}),
		encode(userValue{V: valueVersion, Name: "alice", Scram: map[string]string{"SCRAM-SHA-256": "salt=c2VkaW1lbnQtZXhhbXBsZS1zYWx0LTMyLWJ5dGVzISE=,stored_key=TNOBL3aFnB1lAIZJgg90/UKIUe6q9lZ/YxwTx7/RoUo=,server_key=1M7AZ1gb1t1NMVJGg0kfx2OJsGsk58Iat1Pn5sjdi20=,iterations=4096"}}),
		encode(secretValue{V: valueVersion, Secret: []byte("sediment-example-mask-secret!!!!")}),
	}
	for _, v := range values {
		if !strings.Contains(string(doc), "\n"+v+"\n") {
			t.Errorf("KEYSPACE.md does not show the value %s", v)
		}
	}
	s := &Store{prefix: clusterPrefix("q5TQ0yYhQd2sJ9uZPd1vBw")}
	id := aclID(ACLRecord{ResourceType: 2, ResourceName: "orders", PatternType: 3, Principal: "User:alice", Host: "*", Operation: 3, Permission: 3})
	keys := map[string]string{
		s.UserKey("we/ird%name"): "/sediment/q5TQ0yYhQd2sJ9uZPd1vBw/v1/users/we%2Fird%25name",
		s.UserKey("a.b_c@d-e"):   "/sediment/q5TQ0yYhQd2sJ9uZPd1vBw/v1/users/a.b_c@d-e",
		s.ACLKey(ACLRecord{ResourceType: 2, ResourceName: "orders", PatternType: 3, Principal: "User:alice", Host: "*", Operation: 3, Permission: 3}): "/sediment/q5TQ0yYhQd2sJ9uZPd1vBw/v1/acls/" + id,
	}
	for got, want := range keys {
		if got != want {
			t.Errorf("key %q, want %q", got, want)
		}
	}
	if len(id) != 22 || strings.ContainsAny(id, "/+=") {
		t.Errorf("ACL id %q", id)
	}
}
