package main

import (
	"io"
	"net"
	"sync"
	"time"
)

// cacheProxy is a TCP proxy that the program puts between wtcache and the
// cache server, so that it can take "the cache server" down and bring it
// back mid-run whatever Redis it uses (a real one or miniredis).
//
// Down cuts every connection; until Up, new connections are accepted and
// closed at once, which the Redis client sees exactly as a dead server.
type cacheProxy struct {
	network, target string
	ln              net.Listener

	mu    sync.Mutex
	down  bool
	conns map[net.Conn]struct{}
}

// startProxy listens on a free loopback port and forwards to target.
func startProxy(network, target string) (*cacheProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &cacheProxy{network: network, target: target, ln: ln, conns: map[net.Conn]struct{}{}}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return // closed
			}
			go p.forward(c)
		}
	}()
	return p, nil
}

// Addr is the address the Redis client dials instead of the server's.
func (p *cacheProxy) Addr() string { return p.ln.Addr().String() }

func (p *cacheProxy) forward(client net.Conn) {
	server, err := net.DialTimeout(p.network, p.target, time.Second)
	if err != nil {
		_ = client.Close()
		return
	}
	if !p.track(client, server) {
		_ = client.Close()
		_ = server.Close()
		return
	}
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(server, client); done <- struct{}{} }()
	go func() { _, _ = io.Copy(client, server); done <- struct{}{} }()
	<-done // either side ended (or Down closed them): end both
	_ = client.Close()
	_ = server.Close()
	p.mu.Lock()
	delete(p.conns, client)
	delete(p.conns, server)
	p.mu.Unlock()
}

func (p *cacheProxy) track(cs ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down {
		return false
	}
	for _, c := range cs {
		p.conns[c] = struct{}{}
	}
	return true
}

// Down takes the cache server away: open connections are cut, new ones
// closed as soon as they are accepted.
func (p *cacheProxy) Down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for c := range p.conns {
		_ = c.Close()
	}
}

// Up brings the cache server back.
func (p *cacheProxy) Up() {
	p.mu.Lock()
	p.down = false
	p.mu.Unlock()
}

// IsDown reports whether the cache server is down.
func (p *cacheProxy) IsDown() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.down
}

// Close stops the proxy.
func (p *cacheProxy) Close() {
	_ = p.ln.Close()
	p.Down()
}
