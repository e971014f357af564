# Helpers to find Debian's archive in this machine's apt configuration and
# to add the extra apt entries the build needs.  Sourced by the other
# scripts in this directory; never names an archive host itself.
#
# SPDX-License-Identifier: GPL-2.0-or-later

DEVVM_APT_LIST_DIR=${DEVVM_APT_LIST_DIR:-/etc/apt/sources.list.d}

# Print "URI" of the first enabled "deb" entry that serves the main Debian
# archive (a suite named after the release, not -security), from both
# deb822 .sources files and one-line .list files.
devvm_debian_uri()
{
    local codename=$1 f
    for f in /etc/apt/sources.list "$DEVVM_APT_LIST_DIR"/*.list \
             "$DEVVM_APT_LIST_DIR"/*.sources; do
        [ -r "$f" ] || continue
        case "$f" in
        *.sources)
            awk -v cn="$codename" '
                function flush() {
                    if (types ~ /(^| )deb( |$)/ && enabled != "no" &&
                        (" " suites " ") ~ (" " cn " ") && uris != "") {
                        split(uris, u, " "); print u[1]; found = 1; exit
                    }
                    types = ""; uris = ""; suites = ""; enabled = ""
                }
                /^[ \t]*#/ { next }
                /^[ \t]*$/ { flush(); next }
                /^Types:/   { sub(/^Types:[ \t]*/, "");   types = $0 }
                /^URIs:/    { sub(/^URIs:[ \t]*/, "");    uris = $0 }
                /^Suites:/  { sub(/^Suites:[ \t]*/, "");  suites = $0 }
                /^Enabled:/ { sub(/^Enabled:[ \t]*/, ""); enabled = tolower($0) }
                END { if (!found) flush() }
            ' "$f"
            ;;
        *)
            awk -v cn="$codename" '
                $1 == "deb" {
                    i = 2
                    if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
                    if ($(i + 1) == cn) { print $i; exit }
                }
            ' "$f"
            ;;
        esac
    done | head -n 1
}

devvm_codename()
{
    . /etc/os-release && echo "${VERSION_CODENAME:?no VERSION_CODENAME in /etc/os-release}"
}

# Print the archive URI or fail with a clear message.
devvm_require_debian_uri()
{
    local uri
    uri=$(devvm_debian_uri "$(devvm_codename)")
    uri=${uri%/}
    if [ -z "$uri" ]; then
        echo "devvm: no Debian archive found in the apt sources" \
             "(/etc/apt/sources.list{,.d})" >&2
        return 1
    fi
    echo "$uri"
}

# Write an apt entry (deb822) unless an identical one exists.  Prints
# "changed" when the file was (re)written.
devvm_write_apt_entry()
{
    local file=$1 types=$2 uri=$3 suite=$4 tmp
    tmp=$(mktemp)
    cat >"$tmp" <<EOF
# Written by devvm's scripts/devvm; URI taken from this machine's apt sources.
Types: $types
URIs: $uri
Suites: $suite
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    if cmp -s "$tmp" "$file" 2>/dev/null; then
        rm -f "$tmp"
    else
        install -m 0644 "$tmp" "$file" && rm -f "$tmp" && echo changed
    fi
}
