package filter

import (
	"bytes"
	"unsafe"
)

// TopLevelString returns the value of the top-level string field name of a
// JSON object event, unescaped, and true; or "" and false when the event has
// no such field, or when its field (the last one, if the key appears more
// than once) is not a string. The event's keys are compared with name after
// unescaping. TopLevelString never panics on any input; for one that is not
// a JSON object, what it returns is unspecified.
//
// When the value has no escape, the returned string shares the event's
// memory and does not allocate: event must then not be modified while the
// string is in use (use strings.Clone to keep it longer). A value with
// escapes is a new string.
//
// TopLevelString is safe for concurrent use.
func TopLevelString(event []byte, name string) (string, bool) {
	start, end, found := -1, -1, false // the last occurrence's value
	i := skipSpace(event, 0)
	if i >= len(event) || event[i] != '{' {
		return "", false
	}
	i = skipSpace(event, i+1)
	for i < len(event) && event[i] == '"' {
		kend, escaped := stringEnd(event, i)
		if kend < 0 {
			break
		}
		key := event[i+1 : kend-1]
		i = skipSpace(event, kend)
		if i >= len(event) || event[i] != ':' {
			break
		}
		i = skipSpace(event, i+1)
		vend := skipValue(event, i)
		if vend < 0 {
			break
		}
		if escaped && unescapedEqual(key, name) || !escaped && string(key) == name {
			start, end, found = i, vend, true
		}
		i = skipSpace(event, vend)
		if i >= len(event) || event[i] != ',' {
			break
		}
		i = skipSpace(event, i+1)
	}
	if !found || event[start] != '"' || end-start < 2 {
		return "", false
	}
	v := event[start+1 : end-1]
	if bytes.IndexByte(v, '\\') < 0 {
		if len(v) == 0 {
			return "", true
		}
		// The documented sharing: no copy of the common case.
		return unsafe.String(&v[0], len(v)), true
	}
	u, ok := appendUnescaped(make([]byte, 0, len(v)), v)
	if !ok || len(u) == 0 {
		return "", ok
	}
	return unsafe.String(&u[0], len(u)), true // u is new and not kept: one allocation, not two
}
