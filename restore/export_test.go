package restore

import "path/filepath"

// NoExchange makes Execute replace targets with two renames, as on
// filesystems without renameat2 RENAME_EXCHANGE.
func NoExchange(o *Options) { o.noExchange = true }

// SiblingName returns the path of a temporary sibling of target dir of kind
// "restore" or "old", as an interrupted restore would leave it.
func SiblingName(dir, kind string) string {
	abs, _ := filepath.Abs(dir)
	t := &target{abs: abs, parent: filepath.Dir(abs), base: filepath.Base(abs)}
	return filepath.Join(t.parent, t.sibling(kind)+"0123456789")
}
