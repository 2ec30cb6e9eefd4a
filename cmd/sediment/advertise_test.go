package main

import (
	"net"
	"testing"
)

func TestDefaultAdvertise(t *testing.T) {
	for _, listen := range []string{"127.0.0.1:9092", "localhost:9092", "10.1.2.3:9092"} {
		got, err := defaultAdvertise(listen)
		if err != nil || got != "" {
			t.Errorf("defaultAdvertise(%q) = %q, %v; want the broker's own default (\"\")", listen, got, err)
		}
	}
	if _, err := defaultAdvertise("no-port"); err == nil {
		t.Error("defaultAdvertise of an address without a port: no error")
	}
	if _, err := ownAddress(); err != nil {
		t.Skipf("this host has no non-loopback address: %v", err)
	}
	for _, listen := range []string{"0.0.0.0:9092", "[::]:9092", ":9092"} {
		got, err := defaultAdvertise(listen)
		if err != nil {
			t.Fatalf("defaultAdvertise(%q): %v", listen, err)
		}
		host, port, err := net.SplitHostPort(got)
		if err != nil || port != "9092" {
			t.Fatalf("defaultAdvertise(%q) = %q: want HOST:9092", listen, got)
		}
		if ip := net.ParseIP(host); ip == nil || !usable(ip) {
			t.Errorf("defaultAdvertise(%q) = %q: not a usable address", listen, got)
		}
	}
}
