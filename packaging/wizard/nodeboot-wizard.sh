# /etc/profile.d/nodeboot-wizard.sh — run by login shells.
# On an unconfigured node, the first console login of admin runs the installation wizard
# (through sudo, which asks for the password just set). Once the node is configured, or for
# other users, other terminals or SSH sessions, this does nothing.
if [ "$(id -un 2>/dev/null)" = "admin" ] \
    && [ -z "${SSH_CONNECTION:-}" ] \
    && [ -z "${NODEBOOT_WIZARD_DONE:-}" ] \
    && [ ! -e /var/lib/nodeboot/configured.json ] \
    && [ -x /usr/bin/nodeboot-agent ]; then
    case "$(tty 2>/dev/null)" in
        /dev/ttyS*|/dev/tty[0-9]*|/dev/hvc*|/dev/console)
            NODEBOOT_WIZARD_DONE=1
            export NODEBOOT_WIZARD_DONE
            sudo /usr/bin/nodeboot-agent wizard
            ;;
    esac
fi
