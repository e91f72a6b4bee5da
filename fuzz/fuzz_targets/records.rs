//! Stored records read back from arbitrary bytes: a typed error or a record,
//! never a panic, whatever a corrupted or foreign store holds.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scopegate::records::{
    self, LastUsedRecord, LockoutRecord, RefreshIndexRecord, RefreshRecord, TokenRecord, UserRecord,
    VerifiedRecord,
};

fuzz_target!(|data: &[u8]| {
    let _ = records::decode::<UserRecord>("user/x", data);
    let _ = records::decode::<TokenRecord>("token/x", data);
    let _ = records::decode::<RefreshRecord>("refresh/x", data);
    let _ = records::decode::<LockoutRecord>("lockout/x", data);
    let _ = records::decode::<LastUsedRecord>("last-used/x", data);
    let _ = records::decode::<RefreshIndexRecord>("refresh-of/x", data);
    let _ = records::decode::<VerifiedRecord>("verified/x", data);
});
