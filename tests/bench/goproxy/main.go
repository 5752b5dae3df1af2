// goproxy - the original example's proxy core on Go's standard library only:
// httputil.NewSingleHostReverseProxy in front of the backend, /proxy/*
// forwarded with the prefix removed, one log line per request.
//
//	goproxy -listen 127.0.0.1:PORT -upstream http://127.0.0.1:BACKENDPORT
//
// The Transport keeps up to 64 idle upstream connections, as the nginx
// (keepalive 64) and haproxy (http-reuse always) configurations do.
package main

import (
	"flag"
	"log"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"time"
)

const prefix = "/proxy"

// statusWriter remembers the status and size for the log line.
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += n
	return n, err
}

func main() {
	listen := flag.String("listen", "127.0.0.1:8199", "address to listen on")
	upstream := flag.String("upstream", "http://127.0.0.1:8198", "upstream origin")
	flag.Parse()

	target, err := url.Parse(*upstream)
	if err != nil {
		log.Fatalf("bad -upstream: %v", err)
	}
	log.SetOutput(os.Stdout)

	proxy := httputil.NewSingleHostReverseProxy(target)
	director := proxy.Director
	proxy.Director = func(r *http.Request) {
		// As the original: strip the prefix, then let the default director
		// join the rest onto the upstream.
		r.URL.Path = strings.TrimPrefix(r.URL.Path, prefix)
		if r.URL.RawPath != "" {
			r.URL.RawPath = strings.TrimPrefix(r.URL.RawPath, prefix)
		}
		director(r)
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConns = 64
	transport.MaxIdleConnsPerHost = 64
	proxy.Transport = transport
	proxy.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) {
		log.Printf("proxy error: %v", err)
		w.WriteHeader(http.StatusBadGateway)
	}

	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		if r.URL.Path != prefix && !strings.HasPrefix(r.URL.Path, prefix+"/") {
			http.NotFound(w, r)
			return
		}
		sw := &statusWriter{ResponseWriter: w}
		path := r.URL.RequestURI()
		proxy.ServeHTTP(sw, r)
		log.Printf("%s %s -> %s %d %dB %.1fms", r.Method, path, target.String(),
			sw.status, sw.bytes, float64(time.Since(start).Microseconds())/1000)
	})
	srv := &http.Server{Addr: *listen, Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.ListenAndServe())
}
