"""Facts about one framework's conventions that its frontend and its emitter both need.

A frontend and an emitter never import each other, yet reading and writing
CNTK must agree on, e.g., where CNTK's auto padding puts the odd pixel.  Such
rules live here, once, free of any framework import.
"""
