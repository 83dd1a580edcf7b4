# nodeboot: on an unconfigured node, the admin account's interactive login runs the
# installation wizard through sudo (the seed's dialog: login, password change, sudo, wizard).
# Set NODEBOOT_NO_WIZARD=1 to get a plain shell.
if [ "$(id -un 2>/dev/null)" = admin ] && [ -t 0 ] && [ -z "${NODEBOOT_NO_WIZARD:-}" ] \
    && [ ! -e /var/lib/nodeboot/configured.json ] && [ -x /usr/bin/nodeboot-agent ]; then
    sudo /usr/bin/nodeboot-agent wizard
fi
