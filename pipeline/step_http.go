package pipeline

import (
	"context"
	"fmt"

	"github.com/bakeimg/bake/httpserve"
)

// guestHostIP is the address QEMU's user-mode network gives the host.
const guestHostIP = "10.0.2.2"

// stepHTTPServer serves http.directory and http.content to the guest on a
// loopback port, which user-mode networking exposes as 10.0.2.2.
type stepHTTPServer struct{}

func (*stepHTTPServer) Name() string { return "http" }

func (*stepHTTPServer) Run(ctx context.Context, s *State) error {
	h := s.Recipe.HTTP
	s.data.HTTPIP = guestHostIP
	if h.Directory == "" && len(h.Content) == 0 {
		return nil
	}
	srv, err := httpserve.New(httpserve.Config{
		Directory: h.Directory,
		PortMin:   h.PortMin,
		PortMax:   h.PortMax,
		Emitter:   s.Emitter,
	})
	if err != nil {
		return err
	}
	s.HTTP = srv
	s.data.HTTPPort = srv.Port()

	// Content is rendered once the port is known, since seeds usually
	// point back at this server.
	content := make(map[string][]byte, len(h.Content))
	for path, text := range h.Content {
		rendered, err := s.render(text)
		if err != nil {
			return fmt.Errorf("http.content %q: %w", path, err)
		}
		content[path] = []byte(rendered)
	}
	for path, body := range content {
		if err := srv.SetContent(path, body); err != nil {
			return fmt.Errorf("http.content %q: %w", path, err)
		}
	}
	if err := srv.Start(); err != nil {
		return err
	}
	s.Emitter.Infof("serving seed files on http://%s:%d/ (127.0.0.1:%d on the host)", guestHostIP, srv.Port(), srv.Port())
	return nil
}

func (*stepHTTPServer) Cleanup(s *State) error {
	if s.HTTP != nil {
		return s.HTTP.Close()
	}
	return nil
}
