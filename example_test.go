package herald_test

import (
	"encoding/json"
	"fmt"

	"github.com/heraldpush/herald"
)

func ExampleRender() {
	m := &herald.Message{
		From:    "denny",
		GroupID: "@TGS#1",
		Elems: []herald.Elem{
			{Type: herald.ElemText, Text: "look "},
			{Type: herald.ElemImage},
		},
		OfflinePushInfo: herald.OfflinePushInfo{Ext: json.RawMessage(`{"chat": "@TGS#1"}`)},
	}
	s := herald.Sender{Nickname: "Denny", NameCard: "Den", GroupName: "Go Lovers"}

	a, ok := herald.Render(m, s)
	if !ok {
		fmt.Println("no push")
		return
	}
	fmt.Println(a.Body)
	// The alert is rendered once; each recipient gets its own badge.
	fmt.Printf("%s\n", herald.AppendPayload(nil, &a, 3))
	// Output:
	// Den (Go Lovers):look [image]
	// {"aps":{"alert":{"body":"Den (Go Lovers):look [image]"},"sound":"default","badge":3,"thread-id":"group_@TGS#1"},"ext":{"chat":"@TGS#1"}}
}
