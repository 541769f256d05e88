# Built-in command IPConfig (run-command.md section 3): the IP address, subnet mask and default gateway
# of every adapter bound to TCP/IP.
ipconfig /all
exit $LASTEXITCODE
