package bootstrap

import (
	"io/fs"
	"testing/fstest"
)

// oneFile returns a template directory holding one file.
func oneFile(content string) fs.FS {
	return fstest.MapFS{"a.yaml": &fstest.MapFile{Data: []byte(content)}}
}
