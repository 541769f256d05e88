#!/bin/sh
# Built-in command `ifconfig` (run-command.md section 3): the network configuration of every interface.
# ifconfig (net-tools) where it is installed, else iproute2, else the kernel's own tables.
if command -v ifconfig >/dev/null 2>&1; then
  exec ifconfig -a
elif command -v ip >/dev/null 2>&1; then
  ip address show
  echo
  exec ip route show
else
  echo "ifconfig and ip are not installed; interfaces from /proc/net/dev:"
  exec cat /proc/net/dev
fi
