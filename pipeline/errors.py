"""The one exception class of the toolkit for bad arguments and bad data."""


class ParameterError(ValueError):
  """An argument or a data buffer is invalid.

  Raised for user-facing problems: an empty or corrupt audio file, a NaN in a
  buffer, a wrong rank, a sample rate that does not match, a TFRecord folder
  whose feature parameters differ from the requested ones. The message always
  names the offending value.
  """
