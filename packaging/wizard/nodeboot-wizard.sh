# /etc/profile.d/nodeboot-wizard.sh — run by login shells.
# On an unconfigured node, the first console login of admin runs the installation wizard
# (through sudo, which asks for the password just set). Once the node is configured, or for
# other users, other terminals or SSH sessions, this does nothing. /var/lib/nodeboot is root's
# (0700), so for admin "configured" is also read from nodeboot-acquire's unit: its condition
# on the apply record skipped it at boot (ConditionResult=no). (Not the agent's: on the first
# boot after an apply it runs, serving the checks read-only.)
if [ "$(id -un 2>/dev/null)" = "admin" ] \
    && [ -z "${SSH_CONNECTION:-}" ] \
    && [ -z "${NODEBOOT_WIZARD_DONE:-}" ] \
    && [ ! -e /var/lib/nodeboot/configured.json ] \
    && [ "$(systemctl show -P ConditionResult nodeboot-acquire.service 2>/dev/null)" != no ] \
    && [ -x /usr/bin/nodeboot-wizard ]; then
    case "$(tty 2>/dev/null)" in
        /dev/ttyS*|/dev/tty[0-9]*|/dev/hvc*|/dev/console)
            NODEBOOT_WIZARD_DONE=1
            export NODEBOOT_WIZARD_DONE
            sudo /usr/bin/nodeboot-wizard
            ;;
    esac
fi
