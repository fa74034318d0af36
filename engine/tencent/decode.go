package tencent

import "github.com/heraldpush/herald/engine/wire"

// The fast path of decodeBody: hand-written decoders of the three
// request shapes on engine/wire's scanner, as herald's own endpoint
// decodes its messages. encoding/json's reflection was half of the
// façade's own cost per sendmsg (about 3 of 5.5 µs).
//
// They are exact in the way engine/wire's decoders are: a body they accept
// is one json.Unmarshal accepts, decoded into the same values (fields
// matched case-insensitively as encoding/json folds them, unknown members
// skipped, escapes unquoted, integers as strconv.ParseInt reads them, a
// repeated member merged into what the first left); anything else, from a
// syntax error to a string given for a number, they refuse, and
// decodeBody hands the body to encoding/json, whose error names the field
// that picks Tencent's error code. FuzzDecodeFast holds them to
// encoding/json.

// decodeSendMsg decodes a sendmsg body into r.
func decodeSendMsg(s *wire.Scanner, r *sendMsgRequest) bool {
	return decodeTop(s, func(key []byte) bool {
		if string(key) == "to_account" {
			return s.String(&r.To)
		}
		return c2cMember(s, key, &r.c2cFields)
	})
}

// decodeBatchSendMsg decodes a batchsendmsg body into r.
func decodeBatchSendMsg(s *wire.Scanner, r *batchSendMsgRequest) bool {
	return decodeTop(s, func(key []byte) bool {
		if string(key) == "to_account" {
			return stringArray(s, &r.To)
		}
		return c2cMember(s, key, &r.c2cFields)
	})
}

// decodeGroupMsg decodes a send_group_msg body into r.
func decodeGroupMsg(s *wire.Scanner, r *groupMsgRequest) bool {
	return decodeTop(s, func(key []byte) bool {
		switch string(key) {
		case "groupid":
			return s.String(&r.GroupID)
		case "from_account":
			return s.String(&r.From)
		case "random":
			return int64Ptr(s, &r.Random)
		case "msgpriority":
			return s.String(&r.MsgPriority)
		case "msgbody":
			return msgBody(s, &r.MsgBody)
		case "onlineonlyflag":
			return s.Int64(&r.OnlineOnlyFlag)
		case "sendmsgcontrol":
			return stringArray(s, &r.SendMsgControl)
		case "to_account":
			return s.Raw(&r.ToAccount)
		case "offlinepushinfo":
			return offlinePush(s, &r.OfflinePushInfo)
		}
		return s.SkipValue()
	})
}

// c2cMember decodes the member key of c2cFields, or skips an unknown one.
func c2cMember(s *wire.Scanner, key []byte, f *c2cFields) bool {
	switch string(key) {
	case "syncothermachine":
		return int64Ptr(s, &f.SyncOtherMachine)
	case "from_account":
		return s.String(&f.From)
	case "msglifetime":
		return int64Ptr(s, &f.MsgLifeTime)
	case "msgseq":
		return int64Ptr(s, &f.MsgSeq)
	case "msgrandom":
		return int64Ptr(s, &f.MsgRandom)
	case "msgbody":
		return msgBody(s, &f.MsgBody)
	case "sendmsgcontrol":
		return stringArray(s, &f.SendMsgControl)
	case "offlinepushinfo":
		return offlinePush(s, &f.OfflinePushInfo)
	}
	return s.SkipValue()
}

// decodeTop decodes a whole body, an object whose members member decodes,
// or null (which json.Unmarshal takes for a struct and leaves it as it
// is).
func decodeTop(s *wire.Scanner, member func(key []byte) bool) bool {
	s.SkipSpace()
	switch s.Peek() {
	case '{':
		if !object(s, member) {
			return false
		}
	case 'n':
		if !s.Literal("null") {
			return false
		}
	default:
		return false
	}
	return s.AtEnd()
}

// object reads the object at the current position, handing each member's
// folded key to member, which decodes or skips its value.
func object(s *wire.Scanner, member func(key []byte) bool) bool {
	if !s.Enter() {
		return false
	}
	for first := true; ; first = false {
		key, more := s.Key(first)
		if !more {
			break
		}
		if !member(key) {
			return false
		}
	}
	if s.Failed() {
		return false
	}
	s.Leave()
	return true
}

// structPtr decodes an object into **p as encoding/json does for a
// pointer to a struct: null sets *p to nil; an object is decoded into the
// struct already there, or a new one, by fields; anything else is refused.
func structPtr[T any](s *wire.Scanner, p **T, member func(s *wire.Scanner, key []byte, v *T) bool) bool {
	switch s.Peek() {
	case 'n':
		*p = nil
		return s.Literal("null")
	case '{':
	default:
		return false
	}
	v := *p
	if v == nil {
		v = new(T)
		*p = v
	}
	return object(s, func(key []byte) bool { return member(s, key, v) })
}

// offlinePush decodes OfflinePushInfo.
func offlinePush(s *wire.Scanner, p **offlinePushInfo) bool {
	return structPtr(s, p, offlinePushMember)
}

// offlinePushMember decodes the member key of OfflinePushInfo, or skips
// an unknown one.
func offlinePushMember(s *wire.Scanner, key []byte, o *offlinePushInfo) bool {
	switch string(key) {
	case "pushflag":
		return s.Int64(&o.PushFlag)
	case "title":
		return s.String(&o.Title)
	case "desc":
		return s.String(&o.Desc)
	case "ext":
		return s.String(&o.Ext)
	case "apnsinfo":
		return structPtr(s, &o.ApnsInfo, apnsMember)
	}
	return s.SkipValue()
}

// apnsMember decodes the member key of ApnsInfo, or skips an unknown one.
func apnsMember(s *wire.Scanner, key []byte, a *apnsInfo) bool {
	switch string(key) {
	case "sound":
		return s.String(&a.Sound)
	case "badgemode":
		return s.Int64(&a.BadgeMode)
	case "title":
		return s.String(&a.Title)
	case "subtitle":
		return s.String(&a.SubTitle)
	case "image":
		return s.String(&a.Image)
	case "mutablecontent":
		return s.Int64(&a.MutableContent)
	}
	return s.SkipValue()
}

// msgBody decodes MsgBody, an array of elems.
func msgBody(s *wire.Scanner, p *[]msgElem) bool {
	return mergeArray(s, p, func(e *msgElem) bool {
		switch s.Peek() {
		case '{':
		case 'n':
			// null for a struct leaves it as it is, but still counts.
			return s.Literal("null")
		default:
			return false
		}
		return object(s, func(key []byte) bool {
			switch string(key) {
			case "msgtype":
				return s.String(&e.MsgType)
			case "msgcontent":
				return structPtr(s, &e.MsgContent, contentMember)
			}
			return s.SkipValue()
		})
	})
}

// contentMember decodes the member key of MsgContent, or skips an unknown
// one.
func contentMember(s *wire.Scanner, key []byte, c *elemContent) bool {
	switch string(key) {
	case "text":
		return s.String(&c.Text)
	case "desc":
		return s.String(&c.Desc)
	case "data":
		return s.String(&c.Data)
	case "ext":
		return s.String(&c.Ext)
	case "sound":
		return s.String(&c.Sound)
	}
	return s.SkipValue()
}

// stringArray decodes an array of strings (To_Account of batchsendmsg,
// SendMsgControl).
func stringArray(s *wire.Scanner, p *[]string) bool {
	return mergeArray(s, p, func(v *string) bool { return s.String(v) })
}

// mergeArray decodes an array into *p as encoding/json does for a slice:
// element i into element i of the slice already there (merging, for a
// member given twice), growing it by one when full and otherwise exposing
// what its backing array holds past its length; null sets *p to nil and
// [] to an empty non-nil slice. elem decodes one element, null included.
func mergeArray[T any](s *wire.Scanner, p *[]T, elem func(*T) bool) bool {
	switch s.Peek() {
	case 'n':
		*p = nil
		return s.Literal("null")
	case '[':
	default:
		return false
	}
	if !s.Enter() {
		return false
	}
	v := *p
	i := 0
	for ; s.NextElem(i == 0); i++ {
		if i == cap(v) {
			var zero T
			v = append(v, zero)
		} else if i >= len(v) {
			v = v[:i+1]
		}
		if !elem(&v[i]) {
			return false
		}
	}
	if s.Failed() {
		return false
	}
	s.Leave()
	*p = v[:i]
	if i == 0 {
		*p = []T{}
	}
	return true
}

// int64Ptr decodes a number into **p as encoding/json does for an
// *int64: null sets *p to nil; a number is decoded into the int already
// there, or a new one.
func int64Ptr(s *wire.Scanner, p **int64) bool {
	if s.Peek() == 'n' {
		*p = nil
		return s.Literal("null")
	}
	var n int64
	if !s.Int64(&n) {
		return false
	}
	if *p == nil {
		*p = new(int64)
	}
	**p = n
	return true
}
