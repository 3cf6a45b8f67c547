package checkpoint

import (
	"os"
	"path/filepath"

	"github.com/ckpt-dev/ckpt/metadata"
)

// knownSums returns the SHA-256 digests Create need not compute again: those
// of the stores' shared files that are the very same files as in the newest
// local copy in dir (WriteLocalCopy hard-links shared files, so an
// unchanged sstable and its local copy are one inode), as that copy's
// `_metadata` records them. A file qualifies only if it is the same inode
// with the recorded size and was last modified before the copy's
// `_metadata` was written; anything else, or any problem reading the copy,
// means hashing as usual. The map is keyed by store name, then file name.
//
// A digest taken from here is checked again whenever the file is uploaded
// (uploads re-hash every byte); a file the base checkpoint already holds is
// not re-read, which is safe because shared files are immutable.
func knownSums(dir string, stores []*Store) map[string]map[string]string {
	if dir == "" {
		return nil
	}
	copyDir, meta := newestLocalCopy(dir)
	if meta == nil {
		return nil
	}
	metaInfo, err := os.Stat(filepath.Join(copyDir, metadata.MetadataName))
	if err != nil {
		return nil
	}
	recorded := map[string]map[string]metadata.File{}
	for _, s := range meta.Stores {
		recorded[s.Name] = map[string]metadata.File{}
		for _, f := range s.Files {
			recorded[s.Name][f.Name] = f
		}
	}
	out := map[string]map[string]string{}
	for _, s := range stores {
		for _, f := range s.Files {
			rec, ok := recorded[s.Name][f.Name]
			if !f.Shared || !ok || rec.Size != f.Size || rec.SHA256 == "" {
				continue
			}
			src, err := os.Stat(s.Path(f))
			if err != nil || src.Size() != f.Size || !src.ModTime().Before(metaInfo.ModTime()) {
				continue
			}
			local, err := os.Stat(filepath.Join(copyDir, s.Name, f.Name))
			if err != nil || !os.SameFile(src, local) {
				continue
			}
			if out[s.Name] == nil {
				out[s.Name] = map[string]string{}
			}
			out[s.Name][f.Name] = rec.SHA256
		}
	}
	return out
}

// newestLocalCopy returns the directory and decoded `_metadata` of the local
// copy with the highest id in dir (nil if there is none or it is
// unreadable).
func newestLocalCopy(dir string) (string, *metadata.Checkpoint) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", nil
	}
	var best uint64
	found := false
	for _, e := range entries {
		if id, ok := metadata.ParseCheckpointDirName(e.Name()); ok && e.IsDir() && (!found || id > best) {
			best, found = id, true
		}
	}
	if !found {
		return "", nil
	}
	copyDir := filepath.Join(dir, metadata.CheckpointDirName(best))
	data, err := os.ReadFile(filepath.Join(copyDir, metadata.MetadataName))
	if err != nil {
		return "", nil
	}
	c, err := metadata.Decode(data)
	if err != nil {
		return "", nil
	}
	return copyDir, c
}
