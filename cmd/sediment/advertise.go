package main

import (
	"fmt"
	"net"
	"os"
)

// defaultAdvertise is the address a broker listening on listen advertises
// when --advertise is not set. A listener on a specific host advertises
// itself (the broker's own default). One on the unspecified address
// (0.0.0.0, ::, or no host), as in a container, cannot be told to clients as
// it is, so the broker advertises its host's own address on the port: the
// address its hostname resolves to (what Docker writes into a container's
// /etc/hosts), else the first non-loopback interface address. Kafka falls
// back to the canonical host name the same way when advertised.listeners is
// unset.
func defaultAdvertise(listen string) (string, error) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("--listen %q: %w", listen, err)
	}
	if host != "" {
		if ip := net.ParseIP(host); ip == nil || !ip.IsUnspecified() {
			return "", nil
		}
	}
	ip, err := ownAddress()
	if err != nil {
		return "", fmt.Errorf("--listen %s listens on every interface and no --advertise is set: %w", listen, err)
	}
	return net.JoinHostPort(ip.String(), port), nil
}

// ownAddress is this host's address for other hosts: its hostname's first
// non-loopback address, else its first non-loopback, non-link-local
// interface address (IPv4 before IPv6).
func ownAddress() (net.IP, error) {
	if name, err := os.Hostname(); err == nil {
		if addrs, err := net.LookupIP(name); err == nil {
			for _, ip := range addrs {
				if usable(ip) {
					return ip, nil
				}
			}
		}
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, err
	}
	var v6 net.IP
	for _, a := range addrs {
		n, ok := a.(*net.IPNet)
		if !ok || !usable(n.IP) {
			continue
		}
		if n.IP.To4() != nil {
			return n.IP, nil
		}
		if v6 == nil {
			v6 = n.IP
		}
	}
	if v6 != nil {
		return v6, nil
	}
	return nil, fmt.Errorf("no non-loopback address to advertise; set --advertise")
}

func usable(ip net.IP) bool {
	return !ip.IsLoopback() && !ip.IsUnspecified() && !ip.IsLinkLocalUnicast() && !ip.IsMulticast()
}
