# Shared set-up for the project's scripts: root, Debian packages, Go.
# Sourced, not run.

GO_VERSION=${GO_VERSION:-1.26.8}

die() { echo "error: $*" >&2; exit 1; }

ensure_root() {
	[ "$(id -u)" = 0 ] || die "run as root (the tests install packages and boot VMs)"
}

# ensure_packages PKG... installs the Debian packages that are missing.
ensure_packages() {
	local missing=()
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
	done
	[ ${#missing[@]} = 0 ] && return 0
	echo "installing: ${missing[*]}"
	if [ ! -f /var/lib/apt/srptgt-updated ]; then
		apt-get update -qq
		touch /var/lib/apt/srptgt-updated
	fi
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

# ensure_go puts Go $GO_VERSION (or newer) on PATH, fetching the toolchain
# from the Go module proxy when this machine has none.
ensure_go() {
	export PATH=/usr/local/go/bin:$PATH
	if command -v go >/dev/null; then
		local have
		have=$(go env GOVERSION | sed 's/^go//')
		if [ "$(printf '%s\n%s\n' "$GO_VERSION" "$have" | sort -V | head -1)" = "$GO_VERSION" ]; then
			return 0
		fi
	fi
	ensure_packages curl unzip ca-certificates
	local dir=/usr/local/srptgt-go$GO_VERSION
	if [ ! -x "$dir/bin/go" ]; then
		echo "fetching Go $GO_VERSION from the module proxy"
		local zip
		zip=$(mktemp --suffix=.zip)
		curl -fsSL -o "$zip" "https://proxy.golang.org/golang.org/toolchain/@v/v0.0.1-go$GO_VERSION.linux-amd64.zip"
		local tmp
		tmp=$(mktemp -d)
		unzip -q "$zip" -d "$tmp"
		mv "$tmp/golang.org/toolchain@v0.0.1-go$GO_VERSION.linux-amd64" "$dir"
		chmod +x "$dir"/bin/* "$dir"/pkg/tool/*/* 2>/dev/null || true
		rm -rf "$zip" "$tmp"
	fi
	export PATH=$dir/bin:$PATH
}
