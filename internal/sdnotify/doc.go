// Package sdnotify is a small client of systemd's service notification
// protocol (sd_notify(3)): one datagram of "KEY=value" lines sent to the
// unix socket named by $NOTIFY_SOCKET (a path, or "@name" in the abstract
// namespace), and the watchdog settings of $WATCHDOG_USEC/$WATCHDOG_PID.
//
// Outside systemd (no $NOTIFY_SOCKET) every call is a no-op, so the daemon
// calls it unconditionally. It decides nothing: the daemon says when it is
// ready and what "alive" means; this package only carries the messages and
// paces the watchdog pings. It never exits the process.
package sdnotify
