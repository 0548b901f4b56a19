//! Notify message types (RFC 7296 section 3.10.1, RFC 7383, RFC 7427, IANA registry).
//!
//! Only numbers and names; what each notify means to an exchange lives with that exchange.

/// A notify message type. Error types are below 16384, status types from 16384 up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NotifyType(pub u16);

#[allow(missing_docs)]
impl NotifyType {
    pub const UNSUPPORTED_CRITICAL_PAYLOAD: NotifyType = NotifyType(1);
    pub const INVALID_IKE_SPI: NotifyType = NotifyType(4);
    pub const INVALID_MAJOR_VERSION: NotifyType = NotifyType(5);
    pub const INVALID_SYNTAX: NotifyType = NotifyType(7);
    pub const INVALID_MESSAGE_ID: NotifyType = NotifyType(9);
    pub const INVALID_SPI: NotifyType = NotifyType(11);
    pub const NO_PROPOSAL_CHOSEN: NotifyType = NotifyType(14);
    pub const INVALID_KE_PAYLOAD: NotifyType = NotifyType(17);
    pub const AUTHENTICATION_FAILED: NotifyType = NotifyType(24);
    pub const SINGLE_PAIR_REQUIRED: NotifyType = NotifyType(34);
    pub const NO_ADDITIONAL_SAS: NotifyType = NotifyType(35);
    pub const INTERNAL_ADDRESS_FAILURE: NotifyType = NotifyType(36);
    pub const FAILED_CP_REQUIRED: NotifyType = NotifyType(37);
    pub const TS_UNACCEPTABLE: NotifyType = NotifyType(38);
    pub const INVALID_SELECTORS: NotifyType = NotifyType(39);
    pub const TEMPORARY_FAILURE: NotifyType = NotifyType(43);
    pub const CHILD_SA_NOT_FOUND: NotifyType = NotifyType(44);
    pub const INITIAL_CONTACT: NotifyType = NotifyType(16384);
    pub const SET_WINDOW_SIZE: NotifyType = NotifyType(16385);
    pub const ADDITIONAL_TS_POSSIBLE: NotifyType = NotifyType(16386);
    pub const IPCOMP_SUPPORTED: NotifyType = NotifyType(16387);
    pub const NAT_DETECTION_SOURCE_IP: NotifyType = NotifyType(16388);
    pub const NAT_DETECTION_DESTINATION_IP: NotifyType = NotifyType(16389);
    pub const COOKIE: NotifyType = NotifyType(16390);
    pub const USE_TRANSPORT_MODE: NotifyType = NotifyType(16391);
    pub const HTTP_CERT_LOOKUP_SUPPORTED: NotifyType = NotifyType(16392);
    pub const REKEY_SA: NotifyType = NotifyType(16393);
    pub const ESP_TFC_PADDING_NOT_SUPPORTED: NotifyType = NotifyType(16394);
    pub const NON_FIRST_FRAGMENTS_ALSO: NotifyType = NotifyType(16395);
    pub const MOBIKE_SUPPORTED: NotifyType = NotifyType(16396);
    pub const IKEV2_FRAGMENTATION_SUPPORTED: NotifyType = NotifyType(16430);
    pub const SIGNATURE_HASH_ALGORITHMS: NotifyType = NotifyType(16431);

    /// Whether this is an error type (RFC 7296 section 3.10.1: types below 16384).
    pub fn is_error(self) -> bool {
        self.0 < 16384
    }

    /// A name for logs.
    pub fn name(self) -> &'static str {
        match self {
            NotifyType::UNSUPPORTED_CRITICAL_PAYLOAD => "UNSUPPORTED_CRITICAL_PAYLOAD",
            NotifyType::INVALID_IKE_SPI => "INVALID_IKE_SPI",
            NotifyType::INVALID_MAJOR_VERSION => "INVALID_MAJOR_VERSION",
            NotifyType::INVALID_SYNTAX => "INVALID_SYNTAX",
            NotifyType::INVALID_MESSAGE_ID => "INVALID_MESSAGE_ID",
            NotifyType::INVALID_SPI => "INVALID_SPI",
            NotifyType::NO_PROPOSAL_CHOSEN => "NO_PROPOSAL_CHOSEN",
            NotifyType::INVALID_KE_PAYLOAD => "INVALID_KE_PAYLOAD",
            NotifyType::AUTHENTICATION_FAILED => "AUTHENTICATION_FAILED",
            NotifyType::SINGLE_PAIR_REQUIRED => "SINGLE_PAIR_REQUIRED",
            NotifyType::NO_ADDITIONAL_SAS => "NO_ADDITIONAL_SAS",
            NotifyType::INTERNAL_ADDRESS_FAILURE => "INTERNAL_ADDRESS_FAILURE",
            NotifyType::FAILED_CP_REQUIRED => "FAILED_CP_REQUIRED",
            NotifyType::TS_UNACCEPTABLE => "TS_UNACCEPTABLE",
            NotifyType::INVALID_SELECTORS => "INVALID_SELECTORS",
            NotifyType::TEMPORARY_FAILURE => "TEMPORARY_FAILURE",
            NotifyType::CHILD_SA_NOT_FOUND => "CHILD_SA_NOT_FOUND",
            NotifyType::INITIAL_CONTACT => "INITIAL_CONTACT",
            NotifyType::SET_WINDOW_SIZE => "SET_WINDOW_SIZE",
            NotifyType::ADDITIONAL_TS_POSSIBLE => "ADDITIONAL_TS_POSSIBLE",
            NotifyType::IPCOMP_SUPPORTED => "IPCOMP_SUPPORTED",
            NotifyType::NAT_DETECTION_SOURCE_IP => "NAT_DETECTION_SOURCE_IP",
            NotifyType::NAT_DETECTION_DESTINATION_IP => "NAT_DETECTION_DESTINATION_IP",
            NotifyType::COOKIE => "COOKIE",
            NotifyType::USE_TRANSPORT_MODE => "USE_TRANSPORT_MODE",
            NotifyType::HTTP_CERT_LOOKUP_SUPPORTED => "HTTP_CERT_LOOKUP_SUPPORTED",
            NotifyType::REKEY_SA => "REKEY_SA",
            NotifyType::ESP_TFC_PADDING_NOT_SUPPORTED => "ESP_TFC_PADDING_NOT_SUPPORTED",
            NotifyType::NON_FIRST_FRAGMENTS_ALSO => "NON_FIRST_FRAGMENTS_ALSO",
            NotifyType::MOBIKE_SUPPORTED => "MOBIKE_SUPPORTED",
            NotifyType::IKEV2_FRAGMENTATION_SUPPORTED => "IKEV2_FRAGMENTATION_SUPPORTED",
            NotifyType::SIGNATURE_HASH_ALGORITHMS => "SIGNATURE_HASH_ALGORITHMS",
            t if t.is_error() => "unknown error notify",
            _ => "unknown status notify",
        }
    }
}
