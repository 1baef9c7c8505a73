//! SIP (`nf_conntrack_sip.c`): not written yet; see table/help.rs.
