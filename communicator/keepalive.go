package communicator

import (
	"time"
)

// Keepalive settings. When a guest reboots, QEMU's user-mode networking
// keeps the host side of the forwarded connection open until the guest
// answers a packet with a reset, so without traffic a session would wait
// forever.
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
