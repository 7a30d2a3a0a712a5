package main

import (
	"errors"
	"io/fs"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestTheMemoryLimitFollowsTheContainer(t *testing.T) {
	files := func(m map[string]string) func(string) ([]byte, error) {
		return func(name string) ([]byte, error) {
			if v, ok := m[name]; ok {
				return []byte(v), nil
			}
			return nil, fs.ErrNotExist
		}
	}
	assert.Equal(t, int64(768<<20), memoryLimit(files(map[string]string{"/sys/fs/cgroup/memory.max": "1073741824\n"})), "cgroup v2: three quarters of the limit")
	assert.Equal(t, int64(defaultMemoryLimit), memoryLimit(files(map[string]string{"/sys/fs/cgroup/memory.max": "max\n"})), "cgroup v2 without a limit")
	assert.Equal(t, int64(384<<20), memoryLimit(files(map[string]string{"/sys/fs/cgroup/memory/memory.limit_in_bytes": "536870912"})), "cgroup v1")
	assert.Equal(t, int64(defaultMemoryLimit), memoryLimit(files(map[string]string{"/sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712"})), "cgroup v1 without a limit")
	assert.Equal(t, int64(defaultMemoryLimit), memoryLimit(func(string) ([]byte, error) { return nil, errors.New("no cgroup fs") }), "no cgroup")
}
