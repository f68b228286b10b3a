package filter

// LocateText runs the locator alone, for the black-box tests: the text a
// where value is compared with for the field at the path given by its
// (unescaped) keys, and whether there is one (false when the field is
// missing, an object or an array).
func LocateText(event []byte, keys ...string) (string, bool) {
	nodes, end := addPath([]trieNode{{parent: -1, path: -1}}, keys, 0)
	l := locator{seen: make([]uint64, len(nodes)), recs: make([]record, 1)}
	locate(nodes, event, &l)
	if len(l.touched) == 0 || !l.current(nodes, 0, end) {
		return "", false
	}
	sp, vals, ok := fieldText(event, l.recs[0], nil)
	return string(sp.of(event, vals)), ok
}
