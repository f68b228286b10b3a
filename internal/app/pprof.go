package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"time"
)

// pprofServer serves net/http/pprof on its own address, away from the
// service's port: profiles reveal much about the process and cost CPU, so
// the address must be a loopback one unless -pprof-allow-remote says
// otherwise.
type pprofServer struct {
	srv *http.Server
	ln  net.Listener
}

// checkPprofAddr refuses a -pprof-addr that is not a loopback address unless
// remote access is allowed.
func checkPprofAddr(addr string, allowRemote bool) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("pprof-addr: %w", err)
	}
	if allowRemote {
		return nil
	}
	if host == "localhost" {
		return nil
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || !ip.IsLoopback() {
		return fmt.Errorf("pprof-addr: %q is not a loopback address (127.0.0.1:6060, [::1]:6060); "+
			"add -pprof-allow-remote (DISPATCHER_PPROF_ALLOW_REMOTE=true) to serve profiles to other hosts", addr)
	}
	return nil
}

// listenPprof starts listening for profiles; serve then serves them.
func listenPprof(addr string) (*pprofServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("pprof: listen on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return &pprofServer{ln: ln, srv: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}}, nil
}

func (p *pprofServer) serve() {
	if err := p.srv.Serve(p.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		_ = p.ln.Close()
	}
}

// close stops the profile server; a profile being taken is cut.
func (p *pprofServer) close(ctx context.Context) {
	if err := p.srv.Shutdown(ctx); err != nil {
		_ = p.srv.Close()
	}
	_ = p.ln.Close()
}
