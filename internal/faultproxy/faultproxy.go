// Package faultproxy is a TCP proxy for tests that can cut, delay and
// restore the connection to a real server (Redis or PostgreSQL) on the
// loopback interface.
package faultproxy

import (
	"errors"
	"io"
	"net"
	"sync"
	"time"
)

// Proxy forwards connections from its own loopback address to a target.
type Proxy struct {
	target string
	ln     net.Listener

	mu      sync.Mutex
	down    bool
	hung    bool
	latency time.Duration
	conns   map[net.Conn]struct{}
	wg      sync.WaitGroup
}

// Start listens on a free loopback port and forwards to target.
func Start(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{target: target, ln: ln, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the address clients should dial.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Down cuts every open connection and refuses new ones (they are accepted
// and closed at once) until Up.
func (p *Proxy) Down() {
	p.mu.Lock()
	p.down = true
	for c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
}

// Hang makes the server look alive but silent: connections are accepted
// and kept open, and nothing is forwarded in either direction (what is sent
// meanwhile is dropped), until Up.
func (p *Proxy) Hang() {
	p.mu.Lock()
	p.hung = true
	p.mu.Unlock()
}

// Up lets connections through again.
func (p *Proxy) Up() {
	p.mu.Lock()
	p.down, p.hung = false, false
	p.mu.Unlock()
}

func (p *Proxy) isHung() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.hung
}

// SetLatency delays every chunk forwarded in either direction.
func (p *Proxy) SetLatency(d time.Duration) {
	p.mu.Lock()
	p.latency = d
	p.mu.Unlock()
}

// Close stops the proxy and cuts every connection.
func (p *Proxy) Close() {
	_ = p.ln.Close()
	p.Down()
	p.wg.Wait()
}

func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *Proxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	_ = c.Close()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if !p.track(c) {
			_ = c.Close()
			continue
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			defer p.untrack(c)
			for p.isHung() {
				// Accepted, never answered: drain what the client sends.
				_ = c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
				var buf [512]byte
				if _, err := c.Read(buf[:]); err != nil && !isTimeout(err) {
					return
				}
			}
			_ = c.SetReadDeadline(time.Time{})
			u, err := net.DialTimeout("tcp", p.target, 2*time.Second)
			if err != nil {
				return
			}
			if !p.track(u) {
				_ = u.Close()
				return
			}
			defer p.untrack(u)
			done := make(chan struct{}, 2)
			go func() { p.pipe(u, c); done <- struct{}{} }()
			go func() { p.pipe(c, u); done <- struct{}{} }()
			<-done
		}()
	}
}

func (p *Proxy) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			lat, hung := p.latency, p.hung
			p.mu.Unlock()
			if hung {
				continue // dropped
			}
			if lat > 0 {
				time.Sleep(lat)
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if err != io.EOF {
				_ = dst.Close()
			}
			_ = dst.Close()
			return
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
