package controllers

import (
	"fmt"
	"strings"
	"testing"

	desv1 "github.com/datavision/des/api/v1alpha1"
	"github.com/datavision/des/internal/protocol"
)

func TestExpandShards(t *testing.T) {
	cases := []struct {
		name    string
		spec    desv1.DesShardSpec
		bits    int32
		want    string
		wantErr string
	}{
		{name: "list", spec: desv1.DesShardSpec{Shards: []int32{3, 1, 3}}, bits: 2, want: "[1 3]"},
		{name: "ranges merge", spec: desv1.DesShardSpec{ShardRanges: []desv1.ShardRange{{From: 2, To: 4}, {From: 0, To: 2}}}, bits: 4, want: "[0 1 2 3 4]"},
		{name: "above width", spec: desv1.DesShardSpec{Shards: []int32{4}}, bits: 2, wantErr: "ids are 0..3"},
		{name: "range above width", spec: desv1.DesShardSpec{ShardRanges: []desv1.ShardRange{{From: 0, To: 16}}}, bits: 4, wantErr: "shard 16 is out of range"},
		{name: "empty range", spec: desv1.DesShardSpec{ShardRanges: []desv1.ShardRange{{From: 2, To: 1}}}, bits: 4, wantErr: "empty"},
		{name: "nothing", spec: desv1.DesShardSpec{}, bits: 4, wantErr: "no shards"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := expandShards(tc.spec, tc.bits)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %v, %v; want error containing %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil || fmt.Sprint(got) != tc.want {
				t.Fatalf("got %v, %v; want %s", got, err, tc.want)
			}
		})
	}
}

func TestGroupShardsAndShardList(t *testing.T) {
	groups := groupShards([]int32{0, 1, 2, 3, 4}, 2)
	if fmt.Sprint(groups) != "[[0 1] [2 3] [4]]" {
		t.Fatalf("groups = %v", groups)
	}
	groups[0] = append(groups[0], 99) // a group must not alias the next one
	if fmt.Sprint(groups[1]) != "[2 3]" {
		t.Fatalf("appending to a group changed the next: %v", groups)
	}
	s := protocol.FormatShardList([]int32{0, 7, 4095})
	back, err := protocol.ParseShardList(s)
	if s != "0,7,4095" || err != nil || fmt.Sprint(back) != "[0 7 4095]" {
		t.Fatalf("round trip %q -> %v, %v", s, back, err)
	}
	if _, err := protocol.ParseShardList("1,x"); err == nil {
		t.Fatal("bad shard list accepted")
	}
}
