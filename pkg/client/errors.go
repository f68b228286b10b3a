package client

import (
	"bufio"
	"fmt"
)

// Errors a caller branches on. Compare with [errors.Is].
var (
	// ErrTooLong is returned by [Reader.Next] and [Reader.NextMessage] for a
	// stream line, or an event's data, longer than 16 MiB: the stream cannot
	// be read past it. It wraps [bufio.ErrTooLong].
	ErrTooLong = fmt.Errorf("client: stream line or event longer than %d bytes: %w", maxLine, bufio.ErrTooLong)
)
