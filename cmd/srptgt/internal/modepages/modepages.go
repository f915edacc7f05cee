// Package modepages keeps a logical unit's saved mode pages in a file.
//
// The file is text, one page per line in hex between a header and a CRC-32C
// trailer, so that an administrator can read it and a torn or edited file
// is detected:
//
//	srptgt mode pages v1
//	0a0a0000000000000000000000
//	081200000000000000000000000000000000000000
//	crc32c 5d1a0f3e
//
// Save replaces the file atomically (temporary file in the same directory,
// fsync, rename, fsync of the directory), so a crash leaves the old pages or
// the new ones, never a mixture.
package modepages

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/srptgt/srptgt/cmd/srptgt/internal/atomicfile"
)

// FileName is the file's name inside an LU's state directory.
const FileName = "modepages"

const (
	header = "srptgt mode pages v1"
	// maxPages and maxPageLen bound what Load accepts: a mode page is at
	// most 4+65535 bytes (sub_page format), and an LU has a few dozen.
	maxPages   = 1024
	maxPageLen = 4 + 65535
	maxFile    = 8 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrCorrupt is wrapped by Load's errors about a file that is not a valid
// mode page file.
var ErrCorrupt = errors.New("modepages: corrupt file")

// Encode renders pages in the file format.
func Encode(pages [][]byte) []byte {
	var b bytes.Buffer
	b.WriteString(header)
	b.WriteByte('\n')
	for _, p := range pages {
		b.WriteString(hex.EncodeToString(p))
		b.WriteByte('\n')
	}
	fmt.Fprintf(&b, "crc32c %08x\n", crc32.Checksum(b.Bytes(), castagnoli))
	return b.Bytes()
}

// Decode parses the file format. Every error wraps ErrCorrupt.
func Decode(data []byte) ([][]byte, error) {
	body, trailer, ok := cutLastLine(data)
	if !ok {
		return nil, fmt.Errorf("%w: no crc32c trailer", ErrCorrupt)
	}
	var sum uint32
	if _, err := fmt.Sscanf(trailer, "crc32c %08x", &sum); err != nil || len(trailer) != len("crc32c 00000000") {
		return nil, fmt.Errorf("%w: bad trailer %q", ErrCorrupt, trailer)
	}
	if got := crc32.Checksum(body, castagnoli); got != sum {
		return nil, fmt.Errorf("%w: checksum %08x, trailer says %08x", ErrCorrupt, got, sum)
	}
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 0, 4096), 2*maxPageLen+2)
	if !sc.Scan() || sc.Text() != header {
		return nil, fmt.Errorf("%w: header is not %q", ErrCorrupt, header)
	}
	var pages [][]byte
	for n := 2; sc.Scan(); n++ {
		if len(pages) == maxPages {
			return nil, fmt.Errorf("%w: more than %d pages", ErrCorrupt, maxPages)
		}
		p, err := hex.DecodeString(sc.Text())
		if err != nil {
			return nil, fmt.Errorf("%w: line %d: %v", ErrCorrupt, n, err)
		}
		if len(p) < 2 || len(p) > maxPageLen {
			return nil, fmt.Errorf("%w: line %d: a page of %d bytes", ErrCorrupt, n, len(p))
		}
		pages = append(pages, p)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	return pages, nil
}

// cutLastLine splits "...\nlast\n" into "...\n" and "last".
func cutLastLine(data []byte) ([]byte, string, bool) {
	if len(data) == 0 || data[len(data)-1] != '\n' {
		return nil, "", false
	}
	i := bytes.LastIndexByte(data[:len(data)-1], '\n')
	if i < 0 {
		return nil, "", false
	}
	return data[:i+1], string(data[i+1 : len(data)-1]), true
}

// Load reads the pages saved in dir. A missing file is no pages and no
// error; an unreadable one is an error wrapping ErrCorrupt (content) or
// the operating system's error.
func Load(dir string) ([][]byte, error) {
	path := filepath.Join(dir, FileName)
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() || st.Size() > maxFile {
		return nil, fmt.Errorf("%w: %s is not a regular file of at most %d bytes", ErrCorrupt, path, maxFile)
	}
	data := make([]byte, st.Size())
	if _, err := f.ReadAt(data, 0); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	pages, err := Decode(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return pages, nil
}

// Save replaces the pages saved in dir, atomically and durably: when Save
// returns nil the new pages survive a crash; when it fails the old ones
// are still there.
func Save(dir string, pages [][]byte) error {
	return atomicfile.Write(dir, FileName, Encode(pages), 0o644)
}

// String describes pages for a log line: their codes.
func String(pages [][]byte) string {
	s := make([]string, 0, len(pages))
	for _, p := range pages {
		if len(p) == 0 {
			continue
		}
		if p[0]&0x40 != 0 && len(p) > 1 {
			s = append(s, fmt.Sprintf("%02xh/%02xh", p[0]&0x3F, p[1]))
		} else {
			s = append(s, fmt.Sprintf("%02xh", p[0]&0x3F))
		}
	}
	return strings.Join(s, " ")
}
