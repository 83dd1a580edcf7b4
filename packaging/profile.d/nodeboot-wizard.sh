# nodeboot: on an unconfigured node, the admin account's interactive login runs the
# installation wizard through sudo (the seed's dialog: login, password change, sudo, wizard).
# The node counts as configured when the agent's unit was skipped at boot by its condition
# (the apply record exists: /var/lib/nodeboot is root's, so the unit's result is asked) or
# when the record is visible. Set NODEBOOT_NO_WIZARD=1 to get a plain shell.
if [ "$(id -un 2>/dev/null)" = admin ] && [ -t 0 ] && [ -z "${NODEBOOT_NO_WIZARD:-}" ] \
    && [ -x /usr/bin/nodeboot-agent ] && [ ! -e /var/lib/nodeboot/configured.json ] \
    && [ "$(systemctl show -P ConditionResult nodeboot-agent.service 2>/dev/null)" != no ]; then
    sudo /usr/bin/nodeboot-agent wizard
fi
