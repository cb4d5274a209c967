"""A faithful stand-in for SYSPRO 8: the OData v4 service over ``ArCustomer`` and the e.net REST logon API.

Behaviour follows the project's SYSPRO reference; where the real system's behaviour is unknown, a switch in
``SysproSimConfig`` selects the variant. See ``simulators/syspro/README.md``.
"""

from simulators.syspro.config import OperatorSecrets, SysproFaults, SysproSimConfig
from simulators.syspro.generator import generate_company
from simulators.syspro.simulator import SysproSimulator

__all__ = ["OperatorSecrets", "SysproFaults", "SysproSimConfig", "SysproSimulator", "generate_company"]
