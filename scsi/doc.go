// Package scsi is the one body of SCSI logic every transport shares: a
// target of logical units, each a device type (SBC disk now; SSC tape and
// SMC changer to come) over a backstore, with the SPC-4 state they have in
// common — task sets that honour task attributes, unit attentions per I_T_L
// nexus, mode pages, sense data in fixed or descriptor format.
//
// A transport (through the SRP session layer) attaches an I_T nexus with
// Target.Attach, fills a Command with the CDB, LUN, tag, task attribute and
// the data-out and data-in buffers, and calls Nexus.Execute; the outcome
// (status, sense, data-in length, residuals) is on the Command afterwards.
// Task management functions are Nexus methods. Nothing here knows which
// transport a command came from, and nothing here logs.
//
// Command handlers return errors: a *SenseError becomes CHECK CONDITION
// with sense data, a StatusError another status. Shared error values make
// the common failures allocation-free, and the READ/WRITE path allocates
// nothing at all.
package scsi
