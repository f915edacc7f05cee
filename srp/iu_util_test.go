package srp

import (
	"bytes"
	"fmt"
	"slices"
)

// iuEqual compares two IUs of the same type field by field. A nil and an
// empty slice are equal; Cmd.DescBuf (storage, not content) is ignored.
func iuEqual(a, b codec) bool {
	switch x := a.(type) {
	case *LoginReq:
		return *x == *b.(*LoginReq)
	case *LoginRsp:
		return *x == *b.(*LoginRsp)
	case *LoginRej:
		return *x == *b.(*LoginRej)
	case *ILogout:
		return *x == *b.(*ILogout)
	case *TLogout:
		return *x == *b.(*TLogout)
	case *TskMgmt:
		return *x == *b.(*TskMgmt)
	case *CredReq:
		return *x == *b.(*CredReq)
	case *CredRsp:
		return *x == *b.(*CredRsp)
	case *AerRsp:
		return *x == *b.(*AerRsp)
	case *AerReq:
		y := b.(*AerReq)
		return x.Tag == y.Tag && x.ReqLimDelta == y.ReqLimDelta && x.LUN == y.LUN &&
			x.SolNt == y.SolNt && bytes.Equal(x.Sense, y.Sense)
	case *Rsp:
		y := b.(*Rsp)
		return x.Tag == y.Tag && x.ReqLimDelta == y.ReqLimDelta && x.SolNt == y.SolNt &&
			x.Flags == y.Flags && x.Status == y.Status && x.DataOutResidual == y.DataOutResidual &&
			x.DataInResidual == y.DataInResidual && bytes.Equal(x.RespData, y.RespData) &&
			bytes.Equal(x.Sense, y.Sense)
	case *Cmd:
		y := b.(*Cmd)
		return x.Tag == y.Tag && x.LUN == y.LUN && x.TaskAttr == y.TaskAttr && x.SolNt == y.SolNt &&
			bytes.Equal(x.CDB, y.CDB) && bufDescEqual(&x.Out, &y.Out) && bufDescEqual(&x.In, &y.In) &&
			bytes.Equal(x.Imm, y.Imm) && x.ImmOffset == y.ImmOffset
	case *IU:
		y := b.(*IU)
		if x.Op != y.Op {
			return false
		}
		return iuEqual(x.member(), y.member())
	}
	panic(fmt.Sprintf("iuEqual: %T", a))
}

func bufDescEqual(a, b *BufDesc) bool {
	return a.Format == b.Format && a.Count == b.Count && a.Direct == b.Direct && a.Table == b.Table &&
		a.TotalLen == b.TotalLen && slices.Equal(a.Partial, b.Partial)
}

// member returns the union member selected by Op.
func (u *IU) member() codec {
	switch u.Op {
	case OpLoginReq:
		return &u.LoginReq
	case OpTskMgmt:
		return &u.TskMgmt
	case OpCmd:
		return &u.Cmd
	case OpILogout:
		return &u.ILogout
	case OpCredRsp:
		return &u.CredRsp
	case OpAerRsp:
		return &u.AerRsp
	case OpLoginRsp:
		return &u.LoginRsp
	case OpLoginRej:
		return &u.LoginRej
	case OpRsp:
		return &u.Rsp
	case OpTLogout:
		return &u.TLogout
	case OpCredReq:
		return &u.CredReq
	case OpAerReq:
		return &u.AerReq
	}
	panic("member: unknown opcode")
}
