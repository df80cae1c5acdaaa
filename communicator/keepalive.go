package communicator

import (
	"time"
)

// Keepalive settings. When a guest reboots without closing its
// connections, the host side of a forwarded connection can stay open, and
// without traffic a session would wait for it forever.
const (
	keepaliveInterval = 5 * time.Second
	keepaliveTimeout  = 15 * time.Second
)

// keepalive sends an OpenSSH keepalive request every interval and closes
// the connection when a reply takes longer than timeout. It returns when
// the connection is closed.
func (c *Client) keepalive(interval, timeout time.Duration) {
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	closed := make(chan struct{})
	go func() {
		c.client.Wait()
		close(closed)
	}()

	for {
		select {
		case <-closed:
			return
		case <-ticker.C:
		}
		replied := make(chan error, 1)
		go func() {
			_, _, err := c.client.SendRequest("keepalive@openssh.com", true, nil)
			replied <- err
		}()
		select {
		case <-closed:
			return
		case err := <-replied:
			if err != nil {
				c.client.Close()
				return
			}
		case <-time.After(timeout):
			c.emitter.Warnf("SSH keepalive to %s got no reply in %s, closing the connection", c.addr, timeout)
			c.client.Close()
			return
		}
	}
}
