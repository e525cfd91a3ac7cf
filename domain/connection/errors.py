"""What can go wrong when a shop connects, reconnects or syncs a mall account."""

from domain.errors import Conflict, DomainError, ErrorCode, InvalidInput


class InvalidCredentials(InvalidInput):
    """The mall refused the credentials, or they open another account than expected."""

    code = ErrorCode.INVALID_CREDENTIALS


class PlatformUnreachable(DomainError):
    """The mall could not be asked (outage, timeout, throttling, or no such plugin installed)."""

    code = ErrorCode.PLATFORM_UNAVAILABLE


class AlreadyConnected(Conflict):
    """The shop already has an active connection to this mall account."""

    code = ErrorCode.ALREADY_CONNECTED


class ConnectionInactive(InvalidInput):
    """The connection cannot sync: disconnected, waiting for credentials, or CSV-only."""

    code = ErrorCode.CONNECTION_INACTIVE
