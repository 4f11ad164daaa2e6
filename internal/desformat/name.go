package desformat

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// forbiddenNameChars are the characters v1 forbids in names; '/' in
// particular keeps external keys PREFIX/_bigFiles/NAME one level deep.
const forbiddenNameChars = `/\:*?"<>|`

// ValidateName reports whether name may be written to an archive: non-empty,
// valid UTF-8, at most MaxNameLen bytes, none of / \ : * ? " < > | and not
// "." or ".." (which would alias directories in the external key space).
// The returned error wraps ErrInvalidName or ErrNameTooLong.
func ValidateName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty name", ErrInvalidName)
	case len(name) > MaxNameLen:
		return fmt.Errorf("%w: %d bytes (max %d)", ErrNameTooLong, len(name), MaxNameLen)
	case name == "." || name == "..":
		return fmt.Errorf("%w: %q", ErrInvalidName, name)
	case !utf8.ValidString(name):
		return fmt.Errorf("%w: %q is not valid UTF-8", ErrInvalidName, name)
	}
	if i := strings.IndexAny(name, forbiddenNameChars); i >= 0 {
		return fmt.Errorf("%w: %q contains forbidden character %q", ErrInvalidName, name, name[i])
	}
	return nil
}
