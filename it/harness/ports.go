package harness

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
)

// FreeAddrs returns n distinct 127.0.0.1:port addresses that were free a
// moment ago: all n are held open together while picked, so the kernel
// hands out distinct ports. Another process may take one before it is
// used; the starters here retry on "address already in use".
func FreeAddrs(n int) ([]string, error) {
	var addrs []string
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("finding a free port: %w", err)
		}
		lns = append(lns, ln)
		addrs = append(addrs, ln.Addr().String())
	}
	return addrs, nil
}

// StableAddr returns a free 127.0.0.1:port below the kernel's ephemeral
// port range when it finds one (else any free port): no outgoing
// connection can take such a port while a server that owns it is stopped,
// so the server finds it free again when it restarts.
func StableAddr() (string, error) {
	lo := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil {
				lo = n
			}
		}
	}
	const floor = 10000
	if lo-floor >= 1000 {
		for range 100 {
			port := floor + rand.IntN(lo-floor)
			ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
			if err == nil {
				addr := ln.Addr().String()
				ln.Close()
				return addr, nil
			}
		}
	}
	addrs, err := FreeAddrs(1)
	if err != nil {
		return "", err
	}
	return addrs[0], nil
}
