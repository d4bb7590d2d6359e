module gohothelper

go 1.19
