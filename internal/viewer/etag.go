package viewer

import "bytes"

// etagMatches reports whether an If-None-Match header value names tag (RFC
// 9110, section 13.1.2): "*", or a comma-separated list of entity tags,
// compared weakly (a W/ prefix on either side is ignored). tag is quoted.
// Malformed members simply do not match.
func etagMatches(header []byte, tag string) bool {
	for member := range bytes.SplitSeq(header, []byte(",")) {
		member = bytes.TrimSpace(member)
		if len(member) == 1 && member[0] == '*' {
			return true
		}
		member = bytes.TrimPrefix(member, []byte("W/"))
		if string(member) == tag {
			return true
		}
	}
	return false
}
